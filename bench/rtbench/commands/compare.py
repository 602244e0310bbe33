"""``rtbench compare RUN_A RUN_B`` / ``rtbench compare RUN``: are the differences real?"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from ..analysis.comparison import BY, Settings, compare_runs, compare_within, format_table
from ..config.scenario import ConfigError

HELP = "compare TTFA percentiles and error rates of runs or of a run's targets"
COMPARE_CSV = "compare.csv"
COMPARE_JSON = "compare.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="one run directory (compare its targets) or two (B against A)")
    p.add_argument("--by", choices=BY, default="target",
                   help="compare per target name (default), per region/model group, or per "
                        "reasoning effort (targets with none set: 'unset')")
    p.add_argument("--reference", default=None, metavar="NAME",
                   help="compare every target with this one (default: every pair)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--out", type=Path, default=None,
                   help="directory for compare.csv/json (default: the (last) run directory)")


def handle(ns: argparse.Namespace) -> int:
    if len(ns.runs) > 2:
        raise ConfigError("compare takes one run (its targets) or two runs (B against A)")
    if ns.resamples < 100:
        raise ConfigError("--resamples must be at least 100")
    if not 0.5 <= ns.confidence < 1.0:
        raise ConfigError("--confidence must be within 0.5..1 (e.g. 0.95)")
    settings = Settings(ns.resamples, ns.seed, ns.confidence)
    if len(ns.runs) == 1:
        df = compare_within(ns.runs[0], ns.by, ns.reference, settings)
    else:
        df = compare_runs(ns.runs[0], ns.runs[1], ns.by, ns.reference, settings)
    out: Path = ns.out if ns.out is not None else ns.runs[-1]
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / COMPARE_CSV, index=False)
    doc = {"runs": [str(r) for r in ns.runs], "by": ns.by, "reference": ns.reference,
           "n_resamples": ns.resamples, "seed": ns.seed, "confidence": ns.confidence,
           "rows": df.astype(object).where(df.notna(), None).to_dict("records")}
    (out / COMPARE_JSON).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(format_table(df, ns.confidence))
    print("B-A: TTFA in ms, error rate in percentage points; "
          "\"not resolvable\" = the interval contains 0")
    print(f"comparison: {out / COMPARE_CSV}")
    return 0
