"""Regression against a baseline run: a tail percentile regressed only if a bootstrap interval
of the difference lies wholly above the tolerance (the data show, at the interval's
confidence, that it got worse by more than the tolerance allows).

The tolerance alone flaps on noise at small samples; an interval that merely excludes zero
flags differences too small to matter at large ones, and "point estimate over the tolerance
and interval excluding zero" still failed 1.7 % of comparisons of two runs drawn from one
distribution at 100 turns (p95, seeded lognormal; 0.3 % with the interval above the
tolerance). A percentile is compared only when both runs have five turns beyond it
(:func:`~.bootstrap.min_samples_for_quantile`: p95 100, p99 500): below that its bootstrap
reshuffles the same few largest values. Samples are the per-turn rows (turns.parquet / the journal), so
each resample is a set of real turns; connect and session set-up times are taken once per
session, not once per turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..metrics.recorder import SESSION_LATENCIES, TURN_LATENCIES
from .bootstrap import bootstrap_diff, min_samples_for_quantile, quantile
from .gate import Verdict

#: Metrics that have one sample per turn (or session) in the turns table.
ROW_METRICS = TURN_LATENCIES + SESSION_LATENCIES
DEFAULT_STATS = (95.0, 99.0)


def samples(turns: pd.DataFrame, target: str, metric: str) -> np.ndarray:
    rows = turns[(turns["target"] == target) & (turns["status"] == "ok")]
    if metric in SESSION_LATENCIES:
        rows = rows.drop_duplicates("session_idx")
    return rows[metric].dropna().to_numpy(dtype=np.float64)


def compare(
    base: pd.DataFrame,
    cand: pd.DataFrame,
    metrics: Iterable[str],
    tolerance: float,
    percentiles: Sequence[float] = DEFAULT_STATS,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[Verdict]:
    """One verdict per (metric, percentile, target present in the candidate)."""
    out: list[Verdict] = []
    base_targets = set(base["target"])
    for metric in metrics:
        for target in sorted(set(cand["target"])):
            for q in percentiles:
                name = f"baseline {metric}.p{q:g} [{target}]"
                limit = f"<= baseline +{tolerance * 100:g}% (or the CI reaches below it)"
                if target not in base_targets:
                    out.append(Verdict(name, True, None, limit,
                                       f"{name}: target not in the baseline run, not compared",
                                       group="baseline"))
                    continue
                a, b = samples(base, target, metric), samples(cand, target, metric)
                if len(a) == 0 or len(b) == 0:
                    out.append(Verdict(name, False, None, limit,
                                       f"{name}: no samples (baseline {len(a)}, run {len(b)})",
                                       group="baseline"))
                    continue
                needed = min_samples_for_quantile(q / 100.0)
                if min(len(a), len(b)) < needed:
                    out.append(Verdict(name, True, None, limit,
                                       f"{name}: not compared: too few turns for p{q:g} "
                                       f"(n={len(b)}/{len(a)}, needs {needed} in each run)",
                                       samples=len(b), group="baseline"))
                    continue
                stat = quantile(q / 100.0)
                point, lo, hi = bootstrap_diff(a, b, stat, n_resamples=resamples, seed=seed,
                                               confidence=confidence)
                before, after = float(stat(a, axis=-1)), float(stat(b, axis=-1))
                rel = point / before if before > 0 else 0.0
                regressed = lo > tolerance * before
                verb = "REGRESSED" if regressed else "ok"
                out.append(Verdict(
                    name, not regressed, after, limit,
                    f"{name}: {after:.1f} ms vs baseline {before:.1f} ms ({rel * 100:+.1f}%, "
                    f"{confidence * 100:g}% CI of the difference {lo:+.1f}..{hi:+.1f} ms, "
                    f"n={len(b)}/{len(a)}): {verb} (tolerance {tolerance * 100:g}%)",
                    samples=len(b), group="baseline", observed_text=f"{after:.1f} ms"))
    return out
