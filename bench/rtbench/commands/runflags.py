"""Flag groups of the commands that drive sessions (``run``, ``sweep``, ``calibrate``,
``probe``), each with the typed, frozen object it turns into.

Each command adds only the groups it uses, so ``rtbench probe --help`` lists no load-model
flags; the ``*_from`` functions read a group's flags once, and nothing below ``commands/``
ever sees the argparse namespace.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from ..analysis.gate import Budget
from ..client.engine import INTERLEAVE
from ..client.loadmodel import ARRIVALS, KINDS, LoadModel
from ..config.scenario import ConfigError, Scenario, load_scenario
from ..live.abort import abort_watcher
from ..live.display import progress_watcher
from ..live.intervals import hlog_watcher
from ..live.outputs import OutError, OutSpec, outputs_watcher, parse_out
from ..live.watcher import Watcher
from ..protocol.session_config import REASONING_EFFORTS
from .argtypes import MILLISECONDS, SECONDS
from .bundled import DEFAULT_SCENARIO
from .serve import check_writable

#: Concurrent sessions of a run given no --sessions (and the open model's cap).
DEFAULT_SESSIONS = 10


def add_sessions_arg(p: argparse.ArgumentParser, default: int = DEFAULT_SESSIONS,
                     text: str = "concurrent sessions") -> None:
    p.add_argument("--sessions", type=int, default=default, help=f"{text} (default {default})")


def add_scenario_args(p: argparse.ArgumentParser, turns: bool = True) -> None:
    """``--scenario`` and ``--chunk-ms`` (and ``--turns`` for the commands that run turns)."""
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                   help="scenario TOML (default: the bundled default.toml; `rtbench init DIR` "
                        "writes an editable copy)")
    if turns:
        p.add_argument("--turns", type=int, default=None, help="turns per session (overrides)")
    p.add_argument("--chunk-ms", type=int, default=None, help="chunk size (overrides)")
    p.add_argument("--reasoning-effort", choices=REASONING_EFFORTS, default=None, metavar="LEVEL",
                   help="session reasoning.effort for reasoning models: "
                        f"{', '.join(REASONING_EFFORTS)} (overrides [session.reasoning]; a "
                        "target's own reasoning in a targets file still wins)")


def scenario_from(path: Path, turns: int | None, chunk_ms: int | None,
                  effort: str | None = None) -> Scenario:
    """The scenario file with the flags' overrides applied, checked."""
    scenario = load_scenario(path)
    if effort is not None:
        scenario = replace(scenario, session=replace(scenario.session, reasoning_effort=effort))
    if turns is not None:
        if turns < 1:
            raise ConfigError("--turns must be at least 1")
        scenario = replace(scenario, turns_per_session=turns)
    if chunk_ms is not None:
        if chunk_ms <= 0 or chunk_ms % 10:
            raise ConfigError("--chunk-ms must be a positive multiple of 10")
        scenario = replace(scenario, chunk_ms=chunk_ms)
    return scenario


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="results root directory (default ./results)")
    p.add_argument("--run-id", default=None, help="run directory name (default: time + random)")
    p.add_argument("--saturation-threshold-ms", type=MILLISECONDS, default=5.0, metavar="MS",
                   help="p99 loop lag / send lateness above which the generator is reported "
                        "saturated (default 5)")
    p.add_argument("--trace", action="store_true",
                   help="also write trace.json: one timeline track per session (connect, "
                        "configure, speech, VAD, first audio, response end, errors) for "
                        "ui.perfetto.dev or chrome://tracing")


@dataclass(frozen=True, slots=True)
class Output:
    """Where a run is written, when its generator counts as saturated, and what else is
    written beside it after the run."""

    results: Path = Path("results")
    run_id: str | None = None
    saturation_threshold_ms: float = 5.0
    trace: bool = False


def output_from(ns: argparse.Namespace) -> Output:
    return Output(ns.results, ns.run_id, ns.saturation_threshold_ms, ns.trace)


def add_load_args(p: argparse.ArgumentParser) -> None:
    load = p.add_argument_group("load model")
    load.add_argument("--load", choices=KINDS, default="closed",
                      help="closed: --sessions concurrent; open: arrivals at --rate (default closed)")
    load.add_argument("--rate", type=float, default=0.0, help="open model: sessions per second")
    load.add_argument("--arrival", choices=ARRIVALS, default="constant",
                      help="open model: arrival spacing (default constant)")
    load.add_argument("--ramp-up", type=SECONDS, default=0.0, metavar="DURATION",
                      help="closed model: spread the slots' first starts over this long "
                           "(e.g. 30s, 2m; a plain number is seconds)")
    load.add_argument("--duration", type=SECONDS, default=None, metavar="DURATION",
                      help="stop starting sessions/turns after this long (e.g. 30s, 1h30m); "
                           "closed slots reconnect until then (soak)")
    load.add_argument("--total-sessions", type=int, default=None,
                      help="open model: stop after this many arrivals")
    load.add_argument("--retry", type=int, default=0, metavar="N",
                      help="retry a session that failed retryably before its first turn, up to N "
                           "times (default 0: off); attempts are reported separately")
    load.add_argument("--retry-backoff", type=SECONDS, default=0.5, metavar="DURATION",
                      help="first retry delay (default 500ms), doubled per attempt, jittered, "
                           "capped at 8 s")
    load.add_argument("--sessions-per-target", type=int, default=None, metavar="N",
                      help="N sessions per target (instead of --sessions in total)")
    load.add_argument("--interleave", choices=INTERLEAVE, default="rr",
                      help="how sessions are spread over targets (default rr = round-robin)")
    load.add_argument("--seed", type=int, default=0,
                      help="seed of --interleave random, open-model arrivals and retry jitter "
                           "(default 0)")


@dataclass(frozen=True, slots=True)
class Load:
    """The load-model flags; the session count and a sweep's rate are filled in per run."""

    kind: str = "closed"
    rate_per_s: float = 0.0
    arrival: str = "constant"
    ramp_up_s: float = 0.0
    duration_s: float | None = None
    total_sessions: int | None = None
    retries: int = 0
    backoff_s: float = 0.5
    sessions_per_target: int | None = None
    interleave: str = "rr"
    seed: int = 0

    def sessions(self, sessions: int, n_targets: int) -> int:
        """Sessions of the whole run: ``sessions`` in total, or per target × targets."""
        if self.sessions_per_target is not None:
            if self.sessions_per_target < 1:
                raise ConfigError("--sessions-per-target must be at least 1")
            return self.sessions_per_target * n_targets
        if sessions < 1:
            raise ConfigError("--sessions must be at least 1")
        if sessions < n_targets:
            raise ConfigError(f"--sessions {sessions} leaves some of the {n_targets} targets "
                              "without a session (use --sessions-per-target)")
        return sessions

    def model(self, sessions: int, rate_per_s: float | None = None) -> LoadModel:
        return LoadModel(kind=self.kind, sessions=sessions,
                         rate_per_s=self.rate_per_s if rate_per_s is None else rate_per_s,
                         arrival=self.arrival, ramp_up_s=self.ramp_up_s,
                         duration_s=self.duration_s, total_sessions=self.total_sessions,
                         retries=self.retries, backoff_s=self.backoff_s, seed=self.seed)


def load_from(ns: argparse.Namespace) -> Load:
    return Load(ns.load, ns.rate, ns.arrival, ns.ramp_up, ns.duration, ns.total_sessions,
                ns.retry, ns.retry_backoff, ns.sessions_per_target, ns.interleave, ns.seed)


def add_live_args(p: argparse.ArgumentParser, abort: bool = True) -> None:
    """Live progress and the interval log (and abort-on-fail for commands with budgets)."""
    g = p.add_argument_group("while running")
    if abort:
        g.add_argument("--abort-on-fail", action="store_true",
                       help="stop early once a budget is certainly broken")
        g.add_argument("--abort-min-turns", type=int, default=20, metavar="N",
                       help="turns the targets of a percentile or mean budget must have "
                            "completed before it may abort the run (default 20; a percentile "
                            "also needs 5 samples beyond it: p95 100, p99 500; the generator's "
                            "loop_lag and send_lateness never abort early)")
    g.add_argument("--progress", choices=["auto", "rich", "plain", "off"], default="auto",
                   help="live progress on stderr (auto: rich on a terminal, else a line every 5 s)")
    g.add_argument("--hlog-interval-s", type=SECONDS, default=5.0, metavar="DURATION",
                   help="interval of the HdrHistogram log intervals.hlog (default 5s)")
    g.add_argument("--out", action="append", default=[], metavar="KIND=WHERE",
                   help="stream every metric sample while the run goes, as k6 does "
                        "(repeatable): json=FILE writes k6's JSON lines")


@dataclass(frozen=True, slots=True)
class Live:
    """What watches a run while it goes: interval log, progress display, abort-on-fail."""

    hlog_interval_s: float = 5.0
    progress: str = "auto"
    abort_on_fail: bool = False
    abort_min_turns: int = 20
    outs: tuple[OutSpec, ...] = ()

    def watchers(self, budgets: tuple[Budget, ...]) -> list[Watcher]:
        out = [hlog_watcher(self.hlog_interval_s)]
        if self.progress != "off":
            out.append(progress_watcher(self.progress))
        if self.abort_on_fail:
            out.append(abort_watcher(budgets, self.abort_min_turns))
        if self.outs:
            out.append(outputs_watcher(self.outs))
        return out


def outs_from(texts: list[str]) -> tuple[OutSpec, ...]:
    """The ``--out`` values, checked (a file destination's folder must be writable)."""
    try:
        specs = tuple(parse_out(t) for t in texts)
    except OutError as exc:
        raise ConfigError(str(exc)) from None
    for spec in specs:
        if spec.kind == "json":
            check_writable(Path(spec.where), f"--out {spec}")
    return specs


def live_from(ns: argparse.Namespace, budgets: tuple[Budget, ...] | None) -> Live:
    """The live flags, checked. ``budgets``: what abort-on-fail would watch, or None for a
    command without budgets (and so without the abort flags)."""
    if ns.hlog_interval_s <= 0:
        raise ConfigError("--hlog-interval-s must be positive")
    live = Live(ns.hlog_interval_s, ns.progress, outs=outs_from(ns.out))
    if budgets is None:
        return live
    if ns.abort_min_turns < 1:
        raise ConfigError("--abort-min-turns must be at least 1")
    if ns.abort_on_fail and not budgets:
        raise ConfigError("--abort-on-fail needs at least one budget")
    return replace(live, abort_on_fail=ns.abort_on_fail, abort_min_turns=ns.abort_min_turns)
