"""Bootstrap confidence intervals for the difference of a statistic between two samples.

Latency percentiles have no convenient sampling distribution, so "is B's p95 really higher than
A's?" is answered by resampling: draw each sample with replacement ``n_resamples`` times, compute
``stat(b*) - stat(a*)`` each time, and take the central ``confidence`` share of those differences
(the percentile interval). If that interval contains zero the data cannot tell the two apart.

Deterministic for a given seed (each sample has its own generator, so the answer does not depend
on how the work is batched), vectorised with numpy, and memory-bounded for large runs.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Upper bound on resampled values held in memory at once (≈16 MB of float64).
BATCH_ELEMENTS = 2_000_000


class Statistic(Protocol):
    """Reduces along ``axis`` like numpy: ``np.mean``, ``np.median``, :func:`quantile`."""

    def __call__(self, x: NDArray[np.float64], axis: int) -> Any: ...


def quantile(q: float) -> Statistic:
    """The ``q`` quantile (0..1) as a :class:`Statistic` (numpy's linear interpolation)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within 0..1, got {q}")
    stat: Statistic = functools.partial(np.quantile, q=q)
    return stat


def _sample(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sample, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def bootstrap_diff(
    a: ArrayLike,
    b: ArrayLike,
    stat: Statistic | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """``stat(b) - stat(a)`` and its percentile-bootstrap interval: ``(point, lo, hi)``.

    ``a`` and ``b`` are resampled independently (unpaired samples, e.g. per-turn TTFA of two
    targets). ``stat`` (default: the median) must reduce along ``axis`` as numpy functions do.
    For an error rate pass 0/1 outcomes and ``np.mean``.
    """
    stat = quantile(0.5) if stat is None else stat
    xa, xb = _sample(a, "a"), _sample(b, "b")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    point = float(stat(xb, axis=-1)) - float(stat(xa, axis=-1))
    rng_a, rng_b = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    diffs = np.empty(n_resamples, dtype=np.float64)
    batch = max(1, BATCH_ELEMENTS // max(xa.size, xb.size))
    for start in range(0, n_resamples, batch):
        k = min(batch, n_resamples - start)
        ra = xa[rng_a.integers(0, xa.size, size=(k, xa.size))]
        rb = xb[rng_b.integers(0, xb.size, size=(k, xb.size))]
        diffs[start:start + k] = np.asarray(stat(rb, axis=-1)) - np.asarray(stat(ra, axis=-1))
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(diffs, [tail, 1.0 - tail])
    return point, float(lo), float(hi)


def resolvable(lo: float, hi: float) -> bool:
    """True when the interval excludes zero, i.e. the data tell the two samples apart."""
    return bool(lo > 0.0 or hi < 0.0)


def min_samples_for_quantile(q: float, tail: int = 5) -> int:
    """Samples needed so at least ``tail`` values lie beyond the ``q`` quantile.

    With fewer, the bootstrap of an extreme percentile only reshuffles the same few largest
    values and its interval is too narrow to trust (p99 needs 500 samples, p95 100, p50 10).
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be within (0, 1), got {q}")
    return int(np.ceil(tail / min(q, 1.0 - q) - 1e-9))
