"""Command line: argument parsing and dispatch only. ``rtbench [run] ...``, ``rtbench serve``.

Each sub-command lives in ``rtbench.commands.<name>``; a bare ``rtbench --sessions 5`` means
``rtbench run --sessions 5``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from .client.workload import WorkloadError
from .commands import calibrate, compare, gate, init, probe, report, run, serve, sweep
from .config.scenario import ConfigError
from .process.exitcodes import EXIT_CONFIG
from .results.store import ResultsError

COMMANDS: dict[str, ModuleType] = {
    "run": run,
    "serve": serve,
    "sweep": sweep,
    "calibrate": calibrate,
    "compare": compare,
    "gate": gate,
    "probe": probe,
    "report": report,
    "init": init,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtbench",
        description="Load and latency benchmark for Realtime speech-to-speech WebSocket APIs.")
    sub = parser.add_subparsers(dest="command")
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help")):
        args.insert(0, "run")
    ns = build_parser().parse_args(args)
    try:
        return int(COMMANDS[ns.command].handle(ns))
    except (ConfigError, WorkloadError, ResultsError) as exc:
        print(f"rtbench: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
