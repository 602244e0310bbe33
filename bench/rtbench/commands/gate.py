"""``rtbench gate RUN``: judge a saved run against budgets (and a baseline), offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.verdict import format_verdicts, judge, status_line, write_outputs
from ..results.store import load_manifest
from .gateflags import add_gate_args, budget_texts, gate_config

HELP = "judge a saved run against budgets / a baseline (exit 0 pass, 4 broken)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN", help="a results/<run-id> directory")
    add_gate_args(p)


def handle(ns: argparse.Namespace) -> int:
    texts = budget_texts(ns)
    if not texts and ns.budgets is None:
        # No budgets given: the ones the run itself was gated with.
        texts = [str(t) for t in load_manifest(ns.run_dir).get("budgets", [])]
    cfg = gate_config(ns, texts)
    result = judge(ns.run_dir, cfg)
    write_outputs(ns.run_dir, result, [ns.junit], [ns.summary_json])
    print(format_verdicts(result.verdicts) or "gate: no budgets")
    if (line := status_line(result)) is not None:
        print(line)
    return result.exit_code
