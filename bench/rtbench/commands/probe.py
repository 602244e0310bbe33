"""``rtbench probe``: which set-up step makes a target fail (path, auth, deployment, then a
ladder of session configurations); prints the failing step, error codes and ``sess_…`` ids."""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass

import trio

from ..client.probe import RungResult, explain, ladder, run_probe
from ..client.workload import load_utterance, plan_chunks
from ..config.scenario import ConfigError
from ..process.exitcodes import EXIT_GATE_FAILED, EXIT_OK
from .argtypes import SECONDS
from .destination import add_destination_args, destination_from, open_destination
from .runflags import add_scenario_args, scenario_from

HELP = "find which session set-up step fails against a target (the 'error after created' case)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_args(p, turns=False)
    add_destination_args(p)
    g = p.add_argument_group("probe")
    g.add_argument("--attempts", type=int, default=3, help="fresh sessions per rung (default 3)")
    g.add_argument("--retries", type=int, default=1,
                   help="retries of a failed attempt before it counts as failed (default 1)")
    g.add_argument("--probe-timeout-s", type=SECONDS, default=20.0, metavar="DURATION",
                   help="bound on one attempt (default 20s)")
    g.add_argument("--all-rungs", action="store_true",
                   help="keep climbing after a failing rung")


@dataclass(frozen=True, slots=True)
class Probing:
    """How hard each rung is tried."""

    attempts: int = 3
    retries: int = 1
    timeout_s: float = 20.0
    stop_at_failure: bool = True


def probing_from(ns: argparse.Namespace) -> Probing:
    if ns.attempts < 1 or ns.retries < 0:
        raise ConfigError("--attempts must be at least 1 and --retries not negative")
    return Probing(ns.attempts, ns.retries, ns.probe_timeout_s, not ns.all_rungs)


def handle(ns: argparse.Namespace) -> int:
    probing = probing_from(ns)
    sc = scenario_from(ns.scenario, None, ns.chunk_ms, ns.reasoning_effort)
    destination = destination_from(ns)
    plan = plan_chunks(load_utterance(sc.audio_dir / f"{sc.utterances[0]}.wav"), sc.chunk_ms)
    worst = EXIT_OK
    with open_destination(destination) as targets:
        for target in targets:
            rungs = ladder(sc.session_for(target))  # the target's reasoning effort, if any
            print(f"probe {target.name} ({target.url.split('?')[0]}, {target.dialect}): "
                  + describe(probing, len(rungs)), flush=True)
            results = trio.run(functools.partial(
                run_probe, target, rungs, plan, probing.attempts, probing.retries,
                probing.timeout_s, probing.stop_at_failure,
                on_rung=lambda r: print(rung_line(r), flush=True)))
            print(explain(results), flush=True)
            if not all(r.passed for r in results):
                worst = EXIT_GATE_FAILED
    return worst


def describe(probing: Probing, rungs: int) -> str:
    sessions = _count(probing.attempts, "fresh session", "fresh sessions")
    retried = (f", a failed one retried up to {_count(probing.retries, 'time', 'times')}"
               if probing.retries else "")
    return f"{rungs} rungs, {sessions} each{retried}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def rung_line(result: RungResult) -> str:
    """One rung as soon as it is done: verdict, failure rates, error codes, session ids."""
    line = (f"  {result.rung.name:<16} {'pass' if result.passed else 'FAIL'}  "
            f"{_count(len(result.tries), 'try', 'tries')}, fail/try {result.failure_rate:.0%}, "
            f"after retries {result.failure_rate_with_retries:.0%}")
    codes = ", ".join(f"{c} x{n}" for c, n in result.codes().most_common())
    ids = ", ".join(result.session_ids()[:3])
    return line + (f": {codes}" if codes else "") + (f" ({ids})" if ids else "")
