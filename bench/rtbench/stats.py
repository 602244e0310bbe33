"""Resampling statistics shared by the gate (baseline regression) and ``rtbench compare``.

A tail percentile moving by 10% between two runs can be noise; the question is whether the
difference holds up when the per-turn samples are resampled. :func:`bootstrap_diff` answers
with a seeded percentile-bootstrap confidence interval, so the same inputs always give the
same verdict (a CI gate must not flap on its own randomness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
#: A statistic over the last axis: ``stat(x)`` for 1-D ``x`` gives a scalar; for a 2-D
#: ``(resamples, n)`` matrix it gives one value per row (vectorised, so 1000 resamples are fast).
Stat = Callable[[Array], Array]

#: Resample matrices are built in blocks of at most this many values to bound memory.
_BLOCK_VALUES = 4_000_000


def percentile_stat(q: float) -> Stat:
    """The ``q``-th percentile (0..100) along the last axis, linear interpolation."""

    def stat(x: Array) -> Array:
        return np.asarray(np.percentile(x, q, axis=-1), dtype=np.float64)

    stat.__name__ = f"p{q:g}"
    return stat


def mean_stat(x: Array) -> Array:
    return np.asarray(np.mean(x, axis=-1), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Diff:
    """``stat(b) - stat(a)`` and its bootstrap confidence interval ``[lo, hi]``."""

    point: float
    lo: float
    hi: float

    def excludes_zero(self) -> bool:
        return self.lo > 0.0 or self.hi < 0.0


def _resampled(x: Array, stat: Stat, n: int, rng: np.random.Generator) -> Array:
    out = np.empty(n, dtype=np.float64)
    block = max(1, _BLOCK_VALUES // max(1, len(x)))
    for start in range(0, n, block):
        rows = min(block, n - start)
        idx = rng.integers(0, len(x), size=(rows, len(x)))
        out[start:start + rows] = stat(x[idx])
    return out


def bootstrap_diff(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    stat: Stat,
    n: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Diff:
    """Difference ``stat(b) - stat(a)`` (b = candidate, a = baseline) with a percentile
    bootstrap interval: ``a`` and ``b`` are resampled independently ``n`` times.

    Raises ``ValueError`` for an empty sample or a confidence outside (0, 1).
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.size == 0 or xb.size == 0:
        raise ValueError("bootstrap_diff needs at least one value in each sample")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    diffs = _resampled(xb, stat, n, rng) - _resampled(xa, stat, n, rng)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    return Diff(float(stat(xb) - stat(xa)), float(lo), float(hi))
