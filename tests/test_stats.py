"""bootstrap_diff: correct point, seeded and batch-independent, finds real differences, and
covers zero at about the nominal rate when there is none."""

from __future__ import annotations

import numpy as np
import pytest

from rtbench.analysis import bootstrap as stats
from rtbench.analysis.bootstrap import bootstrap_diff, min_samples_for_quantile, quantile, resolvable


def lognormal(rng: np.random.Generator, median: float, n: int) -> np.ndarray:
    return median * np.exp(rng.normal(0.0, 0.25, n))


def test_point_is_the_difference_of_the_statistic() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0]
    point, lo, hi = bootstrap_diff(a, b, np.mean, n_resamples=500, seed=1)
    assert point == pytest.approx(20.0 - 2.5)
    assert lo <= point <= hi
    point, _, _ = bootstrap_diff(a, b, quantile(0.5), n_resamples=10)
    assert point == pytest.approx(20.0 - 2.5)


def test_constant_samples_give_a_zero_width_interval() -> None:
    assert bootstrap_diff([5.0] * 20, [7.0] * 30, quantile(0.95)) == (2.0, 2.0, 2.0)
    assert bootstrap_diff([5.0] * 20, [5.0] * 30) == (0.0, 0.0, 0.0)
    assert not resolvable(0.0, 0.0)


def test_seeded_and_independent_of_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    a, b = lognormal(rng, 300, 150), lognormal(rng, 320, 170)
    first = bootstrap_diff(a, b, quantile(0.95), n_resamples=300, seed=42)
    assert bootstrap_diff(a, b, quantile(0.95), n_resamples=300, seed=42) == first
    assert bootstrap_diff(a, b, quantile(0.95), n_resamples=300, seed=43) != first
    monkeypatch.setattr(stats, "BATCH_ELEMENTS", 1000)  # 5 resamples per batch
    assert bootstrap_diff(a, b, quantile(0.95), n_resamples=300, seed=42) == first


def test_finds_an_injected_shift_in_the_right_direction() -> None:
    rng = np.random.default_rng(1)
    fast, slow = lognormal(rng, 300, 40), lognormal(rng, 450, 40)
    point, lo, hi = bootstrap_diff(fast, slow, quantile(0.5))
    assert 100 < point < 200 and resolvable(lo, hi) and lo > 0
    point, lo, hi = bootstrap_diff(slow, fast, quantile(0.5))
    assert resolvable(lo, hi) and hi < 0


def test_error_rate_difference_with_zero_one_outcomes() -> None:
    a = np.zeros(200)
    b = np.r_[np.ones(30), np.zeros(170)]
    point, lo, hi = bootstrap_diff(a, b, np.mean, seed=3)
    assert point == pytest.approx(0.15) and 0.08 < lo < 0.15 < hi < 0.22


def test_interval_covers_zero_at_about_the_nominal_rate_when_nothing_differs() -> None:
    # 200 repetitions of two samples from the same distribution, 90% intervals: the interval
    # should exclude zero about 10% of the time (percentile intervals run a little narrow).
    rng = np.random.default_rng(2024)
    misses = 0
    for i in range(200):
        a, b = lognormal(rng, 300, 80), lognormal(rng, 300, 80)
        _, lo, hi = bootstrap_diff(a, b, np.mean, n_resamples=400, seed=i, confidence=0.90)
        misses += resolvable(lo, hi)
    assert 8 <= misses <= 35, misses


def test_min_samples_for_tail_quantiles() -> None:
    assert min_samples_for_quantile(0.5) == 10
    assert min_samples_for_quantile(0.95) == 100
    assert min_samples_for_quantile(0.99) == 500
    with pytest.raises(ValueError):
        min_samples_for_quantile(1.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"a": []}, "non-empty"),
    ({"b": [[1.0, 2.0]]}, "1-D"),
    ({"a": [1.0, float("nan")]}, "NaN"),
    ({"n_resamples": 0}, "n_resamples"),
    ({"confidence": 1.0}, "confidence"),
])
def test_rejects_bad_input(kwargs: dict, message: str) -> None:
    args = {"a": [1.0, 2.0], "b": [3.0], **kwargs}
    with pytest.raises(ValueError, match=message):
        bootstrap_diff(**args)
    with pytest.raises(ValueError):
        quantile(1.5)
