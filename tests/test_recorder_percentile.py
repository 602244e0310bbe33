"""The numpy percentile gives hdrh's own value for every percentile (it replaces hdrh's Python
loop where the event loop waits for the answer)."""

from __future__ import annotations

import random

import pytest

from rtbench.metrics.recorder import new_histogram, value_at_percentile


@pytest.mark.parametrize("seed", range(20))
def test_value_at_percentile_equals_hdrh(seed: int) -> None:
    rng = random.Random(seed)
    hist = new_histogram()
    for _ in range(rng.choice([1, 3, 50, 2000])):
        hist.record_value(max(1, int(rng.lognormvariate(rng.uniform(2, 12), rng.uniform(0.1, 2)))))
    for p in (0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0):
        assert value_at_percentile(hist, p) == hist.get_value_at_percentile(p), p


def test_an_empty_histogram_reads_zero_as_hdrh_does() -> None:
    hist = new_histogram()
    assert value_at_percentile(hist, 99.0) == hist.get_value_at_percentile(99.0) == 0
