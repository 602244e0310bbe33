"""``rtbench [run]``: benchmark real targets (a targets file, one-off flags, a URL) or the
embedded simulator."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..analysis.verdict import JUNIT, SUMMARY_JSON, GateConfig, format_verdicts, judge, write_outputs
from ..client.engine import RunPlan
from ..client.loadmodel import LoadModel
from ..config.scenario import ConfigError, Scenario, Target, load_scenario
from ..live.abort import abort_watcher
from ..live.display import progress_watcher
from ..live.intervals import hlog_watcher
from ..live.watcher import Watcher
from ..orchestrate.execute import RunOutcome, embedded_simulator, execute, print_outcome
from ..protocol import Dialect
from ..results.store import load_manifest
from .argtypes import MILLISECONDS, SECONDS
from .bundled import DEFAULT_SCENARIO
from .distflags import add_dist_args, dist_runner
from .gateflags import add_gate_args, budget_texts, gate_config
from .simflags import add_profile_args, sim_argv, simulator_from
from .targetflags import add_target_args, resolve_targets, total_sessions

HELP = "run a benchmark (the default command)"


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--sessions", type=int, default=10, help="concurrent sessions (default 10)")
    run.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                     help="scenario TOML (default: the bundled default.toml; `rtbench init DIR` "
                          "writes an editable copy)")
    run.add_argument("--turns", type=int, default=None, help="turns per session (overrides)")
    run.add_argument("--chunk-ms", type=int, default=None, help="chunk size (overrides)")
    run.add_argument("--url", default=None,
                     help="target WebSocket URL; none = the built-in simulator")
    run.add_argument("--dialect", choices=[d.value for d in Dialect], default="ga",
                     help="event names --url (or the embedded simulator) speaks: ga (the GA "
                          "Realtime API, default) or beta (OpenAI beta / Azure preview)")
    run.add_argument("--name", default=None, help="target name (default: region/model)")
    run.add_argument("--region", default=None, help="region label (default 'local')")
    run.add_argument("--model", default=None, help="model/deployment label")
    run.add_argument("--results", type=Path, default=Path("results"),
                     help="results root directory (default ./results)")
    run.add_argument("--run-id", default=None, help="run directory name (default: time + random)")
    run.add_argument("--saturation-threshold-ms", type=MILLISECONDS, default=5.0, metavar="MS",
                     help="p99 loop lag / send lateness above which the generator is reported "
                          "saturated (default 5)")
    load = run.add_argument_group("load model")
    load.add_argument("--load", choices=["closed", "open"], default="closed",
                      help="closed: --sessions concurrent; open: arrivals at --rate (default closed)")
    load.add_argument("--rate", type=float, default=0.0, help="open model: sessions per second")
    load.add_argument("--arrival", choices=["constant", "poisson"], default="constant",
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
    add_target_args(run)
    add_gate_args(run)
    g = run.add_argument_group("while running")
    g.add_argument("--abort-on-fail", action="store_true",
                   help="stop early once a budget is certainly broken")
    g.add_argument("--abort-min-turns", type=int, default=20, metavar="N",
                   help="samples a percentile budget needs before it may abort the run (default 20)")
    g.add_argument("--progress", choices=["auto", "rich", "plain", "off"], default="auto",
                   help="live progress on stderr (auto: rich on a terminal, else a line every 5 s)")
    g.add_argument("--no-report", action="store_true", help="do not write report.html")
    g.add_argument("--hlog-interval-s", type=SECONDS, default=5.0, metavar="DURATION",
                   help="interval of the HdrHistogram log intervals.hlog (default 5s)")
    add_dist_args(run)
    add_profile_args(run, "sim-")


def load_model(ns: argparse.Namespace, sessions: int) -> LoadModel:
    return LoadModel(kind=ns.load, sessions=sessions, rate_per_s=ns.rate, arrival=ns.arrival,
                     ramp_up_s=ns.ramp_up, duration_s=ns.duration,
                     total_sessions=ns.total_sessions, retries=ns.retry,
                     backoff_s=ns.retry_backoff, seed=ns.seed)


@dataclass(slots=True)
class Prepared:
    """Everything a run needs that does not depend on the load level (shared with sweep)."""

    scenario: Scenario
    gate_cfg: GateConfig
    watchers: list[Watcher]
    extra: dict[str, object]


def prepare(ns: argparse.Namespace) -> Prepared:
    """Load and check scenario, budgets and watchers: every config error before any session."""
    scenario = load_scenario(ns.scenario)
    if ns.turns is not None:
        if ns.turns < 1:
            raise ConfigError("--turns must be at least 1")
        scenario = replace(scenario, turns_per_session=ns.turns)
    if ns.chunk_ms is not None:
        if ns.chunk_ms <= 0 or ns.chunk_ms % 10:
            raise ConfigError("--chunk-ms must be a positive multiple of 10")
        scenario = replace(scenario, chunk_ms=ns.chunk_ms)
    texts = budget_texts(ns, ns.scenario)
    gate_cfg = gate_config(ns, texts)
    return Prepared(scenario, gate_cfg, _watchers(ns, gate_cfg), {"budgets": texts})


@contextmanager
def open_targets(ns: argparse.Namespace, extra: dict[str, object]) -> Iterator[list[Target]]:
    """The run's targets: resolved real ones, or the embedded simulator (started here)."""
    targets = resolve_targets(ns)
    if targets is not None:
        extra.update(interleave=ns.interleave, seed=ns.seed)
        yield targets
        return
    dialect = Dialect(ns.dialect)
    model = ns.model or "sim-realtime"
    simulator_from(ns, "sim_")  # fail here, with one line, on a bad profile or fault plan
    sim_args = sim_argv(ns)
    extra["simulator"] = {"embedded": True, "args": sim_args}
    with embedded_simulator(sim_args) as base:
        path = ("/openai/realtime?api-version=2025-04-01-preview&deployment=" + model
                if dialect is Dialect.BETA else "/v1/realtime?model=" + model)
        yield [Target(name=ns.name or f"local/{model}", url=base + path, dialect=dialect,
                      region=ns.region or "local", model=model)]


def plan_for(ns: argparse.Namespace, scenario: Scenario, targets: list[Target],
             sessions: int | None = None, rate: float | None = None) -> RunPlan:
    """The run plan; ``sessions``/``rate`` override the flags (a sweep's load level)."""
    n = sessions if sessions is not None else total_sessions(ns, len(targets))
    load = load_model(ns, n)
    if rate is not None:
        load = replace(load, rate_per_s=rate)
    return RunPlan(scenario, targets, n, load, ns.interleave, ns.seed)


def handle(ns: argparse.Namespace) -> int:
    prep = prepare(ns)
    with open_targets(ns, prep.extra) as targets:
        plan = plan_for(ns, prep.scenario, targets)
        outcome = execute(plan, ns.results, ns.run_id, prep.extra, ns.saturation_threshold_ms,
                          prep.watchers, dist_runner(ns, plan.sessions))
    return finish(outcome, prep.gate_cfg, ns)


def _watchers(ns: argparse.Namespace, gate_cfg: GateConfig) -> list[Watcher]:
    if ns.hlog_interval_s <= 0:
        raise ConfigError("--hlog-interval-s must be positive")
    if ns.abort_min_turns < 1:
        raise ConfigError("--abort-min-turns must be at least 1")
    out = [hlog_watcher(ns.hlog_interval_s)]
    if ns.progress != "off":
        out.append(progress_watcher(ns.progress))
    if ns.abort_on_fail:
        if not gate_cfg.budgets:
            raise ConfigError("--abort-on-fail needs at least one budget")
        out.append(abort_watcher(gate_cfg.budgets, ns.abort_min_turns))
    return out


def finish(outcome: RunOutcome, gate_cfg: GateConfig, ns: argparse.Namespace) -> int:
    """Print the table, judge the saved run (as ``rtbench gate`` would), write the verdict."""
    print_outcome(outcome)
    result = judge(outcome.run_dir, gate_cfg)
    write_outputs(outcome.run_dir, result, [outcome.run_dir / JUNIT, ns.junit],
                  [outcome.run_dir / SUMMARY_JSON, ns.summary_json])
    if result.verdicts:
        print(format_verdicts(result.verdicts))
    if load_manifest(outcome.run_dir).get("status") == "partial":
        # stopped by a signal: leave quickly; the HTML can be made later from what was written
        print(f"report: skipped (run stopped); `rtbench report {outcome.run_dir}` writes it")
    elif not ns.no_report:
        from ..analysis.report import write_report  # matplotlib is slow to import: only when asked

        print(f"report: {write_report(outcome.run_dir)}")
    return result.exit_code
