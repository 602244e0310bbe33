"""Gate flags shared by ``rtbench run`` and ``rtbench gate``: budgets, baseline, outputs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..analysis.gate import load_budget_file, parse_budgets
from ..analysis.verdict import GateConfig, baseline_metrics_arg, parse_fraction
from ..results.store import load_manifest


def add_gate_args(p: argparse.ArgumentParser, outputs: bool = True) -> None:
    """Budget and baseline flags (and ``--junit``/``--summary-json`` where a verdict is written)."""
    g = p.add_argument_group("release gate")
    g.add_argument("--budget", action="append", default=[], metavar="BUDGET",
                   help="e.g. 'ttfa.p95 < 800ms', 'error_rate{region=eastus2} < 1%%' (repeatable)")
    g.add_argument("--budgets", type=Path, default=None, metavar="FILE",
                   help="TOML file with [budgets] checks = [...]")
    g.add_argument("--baseline", type=Path, default=None, metavar="RUN_DIR",
                   help="fail if p95/p99 regressed against this run")
    g.add_argument("--baseline-tolerance", default="10%",
                   help="regression beyond this (and a bootstrap CI excluding 0) fails (default 10%%)")
    g.add_argument("--baseline-metrics", default=None, metavar="LIST",
                   help="comma-separated latencies to compare (default: ttfa + budgeted ones)")
    g.add_argument("--baseline-resamples", type=int, default=1000, help="bootstrap resamples")
    g.add_argument("--allow-partial", action="store_true",
                   help="pass a run that did not finish as planned (stopped, crashed sessions, a "
                        "failed shard, recovered) instead of exiting 5")
    if not outputs:
        return
    g.add_argument("--junit", type=Path, default=None, metavar="PATH", help="write JUnit XML here")
    g.add_argument("--summary-json", type=Path, default=None, metavar="PATH",
                   help="write the verdict and summary as JSON here")


def budget_texts(ns: argparse.Namespace, scenario: Path | None = None) -> list[str]:
    """Scenario ``[budgets]``, then ``--budgets FILE``, then each ``--budget``."""
    texts: list[str] = []
    if scenario is not None and scenario.exists():
        texts += load_budget_file(scenario)
    if ns.budgets is not None:
        texts += load_budget_file(ns.budgets)
    return texts + list(ns.budget)


def gate_config(ns: argparse.Namespace, texts: list[str]) -> GateConfig:
    kw: dict[str, Any] = {}
    if ns.baseline_metrics is not None:
        kw["baseline_metrics"] = baseline_metrics_arg(ns.baseline_metrics)
    if ns.baseline is not None:        # before any session runs, not after the whole run
        load_manifest(ns.baseline)     # one ResultsError line if it is not a run directory
    return GateConfig(budgets=tuple(parse_budgets(texts)), baseline=ns.baseline,
                      tolerance=parse_fraction(ns.baseline_tolerance, "--baseline-tolerance"),
                      resamples=ns.baseline_resamples, allow_partial=ns.allow_partial, **kw)
