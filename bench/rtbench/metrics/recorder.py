"""HDR histograms per (target, metric), in integer microseconds.

Values outside a histogram's range are counted per histogram (``out_of_range``) and reported,
never silently dropped. Histograms merge exactly through ``encode``/``decode_and_add`` so
several workers can be combined later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0)

#: Latency metrics recorded per turn (ms in the turn table, µs in the histograms). ``ttfb``
#: is the first audio byte, ``ttfa`` the first audible sample, ``ttfa_answer`` the answer
#: item's (after a reasoning model's preamble); ``silence_pad`` = ttfa - ttfb.
TURN_LATENCIES = ("vad_ms", "ttfb_ms", "ttfa_ms", "silence_pad_ms", "ttfa_answer_ms",
                  "first_transcript_ms", "response_done_ms")
#: Latency metrics recorded once per session.
SESSION_LATENCIES = ("connect_ms", "session_created_ms")
#: How late each chunk left against its absolute deadline (one value per chunk).
SEND_LATENESS = "send_lateness_ms"
#: Counter: chunks that left more than a whole chunk period late (i.e. bunched with the next).
BUNCHED_CHUNKS = "bunched_chunks"
#: Recorded for barge-in turns only.
BARGE_LATENCIES = ("interrupt_ms", "audio_stop_ms")
#: What a barge-in turn records: its response was cut on purpose, so it has no answer latency
#: or response.done latency of its own.
BARGE_TURN_METRICS = (*BARGE_LATENCIES, "vad_ms", "ttfb_ms", "ttfa_ms", "silence_pad_ms",
                      "first_transcript_ms")


def turn_metrics(*, barge_in: bool, premature: bool) -> tuple[str, ...]:
    """The latencies a finished ``ok`` turn enters into the histograms. A premature turn (the
    server answered before the user finished, so its latencies from T_eos are negative or
    meaningless) enters none: it is flagged and counted (``premature_rate``), never clamped
    into the percentiles."""
    if premature:
        return ()
    return BARGE_TURN_METRICS if barge_in else TURN_LATENCIES


ALL_METRICS = SESSION_LATENCIES + TURN_LATENCIES + BARGE_LATENCIES + (SEND_LATENESS,)

#: Pseudo-target under which the generator's own health is recorded.
GENERATOR = "_generator"
#: The generator's event-loop lag, probed every few milliseconds.
LOOP_LAG = "loop_lag_ms"
#: Each scheduled garbage collection (process/gcpolicy.py), as long as it stopped the loop.
GC_PAUSE = "gc_pause_ms"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclass
class Series:
    """One histogram and the count of values it could not hold."""

    histogram: HdrHistogram = field(default_factory=new_histogram)
    out_of_range: int = 0

    def record_ms(self, value_ms: float) -> None:
        us = max(LOWEST_US, round(value_ms * 1000.0))
        if not self.histogram.record_value(us):
            self.out_of_range += 1


class Recorder:
    """All histograms of a run (or a worker), keyed by (target name, metric)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], Series] = {}
        self.counters: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        """Add to a named event counter (e.g. chunks sent over a whole chunk period late)."""
        self.counters[name] = self.counters.get(name, 0) + n

    def series(self, target: str, metric: str) -> Series:
        key = (target, metric)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series()
        return found

    def find(self, target: str, metric: str) -> Series | None:
        """The series if anything was recorded in it (unlike :meth:`series`, never creates one)."""
        return self._series.get((target, metric))

    def record_ms(self, target: str, metric: str, value_ms: float | None) -> None:
        """Record a latency; ``None`` (not measured, e.g. a timed-out turn) is skipped."""
        if value_ms is not None:
            self.series(target, metric).record_ms(value_ms)

    def items(self) -> Iterator[tuple[tuple[str, str], Series]]:
        return iter(sorted(self._series.items()))

    def encoded(self) -> dict[str, dict[str, object]]:
        """JSON-ready form: ``{"target|metric": {"hdr": <base64>, "out_of_range": n}}``,
        plus the counters under the key ``"counters"``."""
        out: dict[str, dict[str, object]] = {
            f"{t}|{m}": {"hdr": s.histogram.encode().decode(), "out_of_range": s.out_of_range}
            for (t, m), s in self.items()
        }
        out["counters"] = dict(self.counters)
        return out

    def merge_encoded(self, encoded: dict[str, dict[str, object]]) -> None:
        for key, entry in encoded.items():
            if key == "counters":
                for name, n in entry.items():
                    self.count(name, int(str(n)))
                continue
            target, metric = key.split("|", 1)
            series = self.series(target, metric)
            series.histogram.decode_and_add(str(entry["hdr"]))
            series.out_of_range += int(str(entry["out_of_range"]))


def value_at_percentile(hist: HdrHistogram, percentile: float) -> int:
    """``hist.get_value_at_percentile(percentile)``, the same value, from numpy.

    Why: hdrh walks its counts in a Python loop: 2.6 ms per call here, and the live display and
    abort-on-fail ask on the event loop while every session waits behind it. A cumulative sum
    and a binary search over the same counts take 0.3 ms."""
    total = hist.get_total_count()
    if total == 0:
        return 0
    target = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
    cumulative = np.cumsum(np.ctypeslib.as_array(hist.counts)[: hist.counts_len])
    index = int(np.searchsorted(cumulative, target))
    if index >= hist.counts_len:
        return 0
    value = hist.get_value_from_index(index)
    return int(hist.get_highest_equivalent_value(value) if percentile
               else hist.get_lowest_equivalent_value(value))


def percentiles_ms(hist: HdrHistogram, percentiles: Iterable[float] = PERCENTILES) -> dict[str, float]:
    """``{"p50": ms, ..., "max": ms}`` from a histogram (empty histogram -> NaN)."""
    pcts = tuple(percentiles)
    if hist.get_total_count() == 0:
        return {**{f"p{p:g}": float("nan") for p in pcts}, "max": float("nan")}
    values = hist.get_percentile_to_value_dict(list(pcts))
    out = {f"p{p:g}": values[p] / 1000.0 for p in pcts}
    out["max"] = hist.get_max_value() / 1000.0
    return out
