"""``rtbench calibrate``: measure rtbench's own TTFA error against the embedded simulator
answering with a known, constant latency; prints p50/p99 of the error at N sessions.

Takes only what such a run needs: no targets (it is against the simulator by definition), no
simulator flags (the latency is ``--injected-ms``), no budgets or load model."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..analysis.calibration import describe, ttfa_error
from ..process.exitcodes import EXIT_OK
from .argtypes import MILLISECONDS
from .destination import Embedded, open_destination
from .run import RunOptions
from .runflags import (
    add_live_args,
    add_output_args,
    add_scenario_args,
    add_sessions_arg,
    live_from,
    output_from,
    scenario_from,
)

HELP = "measure rtbench's own TTFA error against a simulator with known latency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sessions_arg(p, default=50)
    add_scenario_args(p)
    add_output_args(p)
    add_live_args(p, abort=False)
    p.add_argument("--injected-ms", type=MILLISECONDS, default=700.0, metavar="MS",
                   help="the simulator's constant first-audio latency (default 700)")
    p.add_argument("--tls", action="store_true",
                   help="over wss:// (the simulator with a self-signed CA the client trusts)")
    p.set_defaults(turns=2, progress="off")


def handle(ns: argparse.Namespace) -> int:
    injected = str(ns.injected_ms)
    # The simulator's stats file, to report its own lateness beside the error.
    stats_file = Path(tempfile.mkdtemp(prefix="rtbench-cal-")) / "sim-stats.json"
    simulator = Embedded(("--first-audio-ms", injected, "--first-audio-p99-ms", injected,
                          "--stats-file", str(stats_file)), tls=ns.tls)
    opts = RunOptions(scenario_from(ns.scenario, ns.turns, ns.chunk_ms), simulator, ns.sessions,
                      output=output_from(ns), live=live_from(ns, None))
    with open_destination(opts.destination) as targets:
        outcome = opts.execute(targets, opts.output.results, opts.output.run_id)
    sim_lateness = None
    if stats_file.exists():
        sim_lateness = json.loads(stats_file.read_text()).get("send_lateness_ms")
    result = ttfa_error(outcome.turns, ns.injected_ms)
    result["sessions"] = opts.sessions  # one target: the run's sessions
    result["generator"] = outcome.generator
    result["simulator_send_lateness_ms"] = sim_lateness
    (outcome.run_dir / "calibration.json").write_text(json.dumps(result, indent=2))
    print(describe(result, opts.sessions, sim_lateness))
    if outcome.generator.get("saturated"):
        print("  note: the load generator was saturated; the error includes its lag")
    print(f"results: {outcome.run_dir}")
    return EXIT_OK if result.get("turns") else outcome.exit_code
