"""``rtbench calibrate``: measure rtbench's own TTFA error against the embedded simulator
answering with a known, constant latency; prints p50/p99 of the error at N sessions."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..analysis.calibration import describe, ttfa_error
from ..config.scenario import ConfigError
from ..orchestrate.execute import execute
from ..process.exitcodes import EXIT_OK
from . import run
from .argtypes import MILLISECONDS

HELP = "measure rtbench's own TTFA error against a simulator with known latency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    run.add_arguments(p)
    p.add_argument("--injected-ms", type=MILLISECONDS, default=700.0, metavar="MS",
                   help="the simulator's constant first-audio latency (default 700)")
    p.set_defaults(sessions=50, turns=2, progress="off", no_report=True)


def handle(ns: argparse.Namespace) -> int:
    if ns.targets is not None or ns.provider is not None or ns.url is not None:
        raise ConfigError("calibrate runs against the embedded simulator only (no targets)")
    ns.sim_first_audio_ms = ns.injected_ms
    ns.sim_first_audio_p99_ms = ns.injected_ms
    if ns.sim_stats_file is None:  # to report the simulator's own lateness beside the error
        ns.sim_stats_file = Path(tempfile.mkdtemp(prefix="rtbench-cal-")) / "sim-stats.json"
    prep = run.prepare(ns)
    with run.open_targets(ns, prep.extra) as targets:
        plan = run.plan_for(ns, prep.scenario, targets)
        outcome = execute(plan, ns.results, ns.run_id, prep.extra,
                          ns.saturation_threshold_ms, prep.watchers)
    sim_lateness = None
    if ns.sim_stats_file.exists():
        sim_lateness = json.loads(ns.sim_stats_file.read_text()).get("send_lateness_ms")
    result = ttfa_error(outcome.turns, ns.injected_ms)
    result["sessions"] = plan.sessions
    result["generator"] = outcome.generator
    result["simulator_send_lateness_ms"] = sim_lateness
    (outcome.run_dir / "calibration.json").write_text(json.dumps(result, indent=2))
    print(describe(result, plan.sessions, sim_lateness))
    if outcome.generator.get("saturated"):
        print("  note: the load generator was saturated; the error includes its lag")
    print(f"results: {outcome.run_dir}")
    return EXIT_OK if result.get("turns") else outcome.exit_code
