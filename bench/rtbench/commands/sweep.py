"""``rtbench sweep``: raise the load step by step, then bisect, to find the largest load that
keeps the budgets. Each level is a full run under ``<results>/<sweep-id>/``, judged exactly as
``rtbench gate`` would judge it. Takes the ``run`` flags except ``--junit``, ``--summary-json``
and ``--no-report``: a level writes no verdict file and no report, the sweep its own tables."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from ..analysis.sweep import Search, SweepSettings
from ..analysis.verdict import judge
from ..config.scenario import ConfigError
from ..orchestrate.execute import new_run_id
from ..process.exitcodes import EXIT_GATE_FAILED, EXIT_OK
from . import run
from .destination import open_destination
from .runflags import DEFAULT_SESSIONS

HELP = "find the largest load that keeps the budgets (step up, then bisect)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    run.add_arguments(p, outputs=False, sessions=False)
    g = p.add_argument_group("sweep")
    g.add_argument("--over", choices=["sessions", "rate"], default="sessions",
                   help="what to raise: closed-model sessions, or open-model arrival rate (/s)")
    g.add_argument("--sessions", type=int, default=None,
                   help="--over rate only: the open model's cap on concurrent sessions (default "
                        f"{DEFAULT_SESSIONS}); --over sessions runs --start .. --max per level")
    g.add_argument("--start", type=int, default=5, help="first level (default 5)")
    g.add_argument("--factor", type=float, default=2.0, help="step-up factor (default 2)")
    g.add_argument("--max", type=int, default=200, dest="maximum", help="highest level (default 200)")
    g.add_argument("--resolution", type=int, default=1,
                   help="bisect until pass and fail levels are this close (default 1)")


def handle(ns: argparse.Namespace) -> int:
    if ns.over == "sessions" and (ns.sessions is not None or ns.sessions_per_target is not None):
        given = "--sessions" if ns.sessions is not None else "--sessions-per-target"
        raise ConfigError(f"{given} has no effect on sweep --over sessions: each level's sessions "
                          "are the level (--start, --factor, --max)")
    if ns.sessions is None:
        ns.sessions = DEFAULT_SESSIONS
    opts = run.run_options(ns)
    if not opts.gate.budgets:
        raise ConfigError("sweep needs budgets (--budget, --budgets or [budgets] in the scenario)")
    if ns.over == "rate" and opts.load.kind != "open":
        raise ConfigError("--over rate needs --load open (and --duration or --total-sessions)")
    search = Search(SweepSettings(ns.start, ns.factor, ns.maximum, ns.resolution))
    root = opts.output.results / (opts.output.run_id or new_run_id())
    rows = []
    with open_destination(opts.destination) as targets:
        while (level := search.next_load()) is not None:
            run_id = f"{ns.over}-{level:05d}"
            outcome = (opts.execute(targets, root, run_id, sessions=level) if ns.over == "sessions"
                       else opts.execute(targets, root, run_id, rate=float(level)))
            result = judge(outcome.run_dir, opts.gate)
            passed = result.passed and result.measured > 0
            failed = [v.message for v in result.verdicts if not v.passed]
            search.record(level, passed, bool(outcome.generator["saturated"]),
                          "; ".join(failed)[:300])
            step = search.steps[-1]
            rows.append({"level": level, "phase": step.phase, "passed": passed,
                         "saturated": step.saturated, "turns_ok": result.measured,
                         "ttfa_p95_ms": _ttfa_p95(outcome.summary), "failed": step.detail,
                         "run_dir": str(outcome.run_dir)})
            print(f"sweep {ns.over}={level}: {'pass' if passed else 'FAIL'}"
                  f"{' (generator saturated)' if step.saturated else ''}"
                  f"{': ' + step.detail if step.detail else ''}", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(root / "sweep.csv", index=False)
    answer = search.answer()
    (root / "sweep.json").write_text(json.dumps(
        {"over": ns.over, "best": search.best, "first_failing": search.worst,
         "stopped": search.stopped, "answer": answer, "steps": rows}, indent=2))
    print(table[["level", "phase", "passed", "saturated", "turns_ok", "ttfa_p95_ms"]]
          .to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(answer)
    print(f"sweep: {root}")
    return EXIT_OK if search.best is not None else EXIT_GATE_FAILED


def _ttfa_p95(summary: pd.DataFrame) -> float:
    if "ttfa_ms_p95" not in summary or summary.empty:
        return float("nan")
    return float(summary["ttfa_ms_p95"].max())
