"""``rtbench calibrate``: measure rtbench's own error on TTFB, TTFA and the answer's TTFA
against the embedded simulator answering with known, constant timings (first audio, a leading
silence pad, a preamble item, the answer's delay); prints p50/p99 of each error at N sessions.

Takes only what such a run needs: no targets (it is against the simulator by definition), no
simulator flags (the timings are ``--injected-ms``, ``--silence-pad-ms``, ``--preamble-ms`` and
``--answer-delay-ms``), no budgets or load model."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..analysis.calibration import Injection, describe, measurement_error
from ..config.scenario import ConfigError
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

HELP = "measure rtbench's own TTFB/TTFA error against a simulator with known timings"
CALIBRATION_JSON = "calibration.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sessions_arg(p, default=50)
    add_scenario_args(p)
    add_output_args(p)
    add_live_args(p, abort=False)
    default = Injection()
    p.add_argument("--injected-ms", type=MILLISECONDS, default=default.first_audio_ms,
                   metavar="MS",
                   help=f"the simulator's constant first-audio latency (default "
                        f"{default.first_audio_ms:g})")
    p.add_argument("--silence-pad-ms", type=int, default=default.silence_pad_ms, metavar="MS",
                   help=f"leading silence in every response's audio (default "
                        f"{default.silence_pad_ms})")
    p.add_argument("--preamble-ms", type=int, default=default.preamble_ms, metavar="MS",
                   help=f"a preamble item of this much audio before every answer (default "
                        f"{default.preamble_ms}; 0: none)")
    p.add_argument("--answer-delay-ms", type=MILLISECONDS, default=default.answer_delay_ms,
                   metavar="MS",
                   help=f"the answer's first audio after the preamble has played (default "
                        f"{default.answer_delay_ms:g})")
    p.add_argument("--tls", action="store_true",
                   help="over wss:// (the simulator with a self-signed CA the client trusts)")
    p.set_defaults(turns=2, progress="off")


def handle(ns: argparse.Namespace) -> int:
    if ns.silence_pad_ms < 0 or ns.preamble_ms < 0:
        raise ConfigError("--silence-pad-ms and --preamble-ms must be at least 0")
    injection = Injection(ns.injected_ms, ns.silence_pad_ms, ns.preamble_ms, ns.answer_delay_ms)
    # The simulator's stats file, to report its own lateness beside the error.
    stats_file = Path(tempfile.mkdtemp(prefix="rtbench-cal-")) / "sim-stats.json"
    simulator = Embedded((*injection.simulator_args(), "--stats-file", str(stats_file)),
                         tls=ns.tls)
    opts = RunOptions(scenario_from(ns.scenario, ns.turns, ns.chunk_ms, ns.reasoning_effort),
                      simulator, ns.sessions, output=output_from(ns), live=live_from(ns, None))
    opts.check()
    with open_destination(opts.destination) as targets:
        outcome = opts.execute(targets, opts.output.results, opts.output.run_id)
    sim_lateness = None
    if stats_file.exists():
        sim_lateness = json.loads(stats_file.read_text()).get("send_lateness_ms")
    result = measurement_error(outcome.turns, injection)
    result["sessions"] = opts.sessions  # one target: the run's sessions
    result["generator"] = outcome.generator
    result["simulator_send_lateness_ms"] = sim_lateness
    (outcome.run_dir / CALIBRATION_JSON).write_text(json.dumps(result, indent=2))
    print(describe(result, opts.sessions, sim_lateness))
    if outcome.generator.get("saturated"):
        print("  note: the load generator was saturated; the error includes its lag")
    print(f"results: {outcome.run_dir}")
    return EXIT_OK if result.get("turns") else outcome.exit_code
