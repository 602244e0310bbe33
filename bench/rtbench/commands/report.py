"""``rtbench report RUN``: write a self-contained HTML report of a saved run."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write report.html (plots embedded) for a saved run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN", help="a results/<run-id> directory")
    p.add_argument("--out", type=Path, default=None, help="output file (default RUN/report.html)")


def handle(ns: argparse.Namespace) -> int:
    from ..report import write_report  # matplotlib is slow to import: only when asked

    print(f"report: {write_report(ns.run_dir, ns.out)}")
    return 0
