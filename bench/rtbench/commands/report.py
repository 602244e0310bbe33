"""``rtbench report RUN``: write a self-contained HTML report of a saved run."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..results.recover import needs_recovery, recover

HELP = "write report.html (plots embedded) for a saved run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN", help="a results/<run-id> directory")
    p.add_argument("--out", type=Path, default=None, help="output file (default RUN/report.html)")


def handle(ns: argparse.Namespace) -> int:
    from ..analysis.report import write_report  # matplotlib is slow to import: only when asked

    if needs_recovery(ns.run_dir):
        got = recover(ns.run_dir)
        print(f"recovered an unfinished run from its journal: {got['turns']} turns, "
              f"{got['errors']} errors, {got['sessions']} sessions "
              f"(lost: {', '.join(got['lost'])})")
    print(f"report: {write_report(ns.run_dir, ns.out)}")
    return 0
