"""Was the load generator itself the bottleneck? Judged from its own lag, after the run.

The engine probes event-loop lag every 10 ms and every session records how late each chunk
left. When the p99 of either exceeds the threshold, receive stamps and end-of-speech stamps
were taken late, so every client-stamped latency is suspect: the run says so, by name.
"""

from __future__ import annotations

from typing import Any

from ..metrics.recorder import GC_PAUSE, GENERATOR, LOOP_LAG
from .recorder import BUNCHED_CHUNKS, SEND_LATENESS, Recorder, new_histogram, value_at_percentile

DEFAULT_THRESHOLD_MS = 5.0
#: Figures stamped by the client's event loop, hence distorted when it lags.
AFFECTED = ("ttfb_ms", "ttfa_ms", "ttfa_answer_ms", "vad_ms", "first_transcript_ms",
            "response_done_ms", "connect_ms", "session_created_ms", "send_lateness_ms")


def assess(recorder: Recorder, targets: list[str], threshold_ms: float) -> dict[str, Any]:
    """``{"saturated": bool, "loop_lag_p99_ms", "send_lateness_p99_ms", ...}``."""
    lag = recorder.series(GENERATOR, LOOP_LAG).histogram
    gc_series = recorder.find(GENERATOR, GC_PAUSE)
    gc_pause = new_histogram() if gc_series is None else gc_series.histogram
    late = new_histogram()
    for name in targets:
        late.add(recorder.series(name, SEND_LATENESS).histogram)
    lag_p99 = value_at_percentile(lag, 99) / 1000 if lag.get_total_count() else 0.0
    late_p99 = value_at_percentile(late, 99) / 1000 if late.get_total_count() else 0.0
    saturated = lag_p99 > threshold_ms or late_p99 > threshold_ms
    return {
        "saturated": saturated,
        "threshold_ms": threshold_ms,
        "loop_lag_p99_ms": lag_p99,
        "loop_lag_max_ms": lag.get_max_value() / 1000 if lag.get_total_count() else 0.0,
        "send_lateness_p99_ms": late_p99,
        "bunched_chunks": recorder.counters.get(BUNCHED_CHUNKS, 0),
        # scheduled garbage collections during the run and the longest (they show in the lag)
        "gc_passes": gc_pause.get_total_count(),
        "gc_pause_max_ms": gc_pause.get_max_value() / 1000 if gc_pause.get_total_count() else 0.0,
        "affected": list(AFFECTED) if saturated else [],
    }


def describe(verdict: dict[str, Any]) -> str | None:
    """One warning line when saturated, else None: only the figures over the threshold."""
    if not verdict["saturated"]:
        return None
    limit = verdict["threshold_ms"]
    over = [f"{name} p99 {verdict[key]:.1f} ms" for name, key in (
        ("loop lag", "loop_lag_p99_ms"), ("send lateness", "send_lateness_p99_ms"))
        if verdict[key] > limit]
    bunched = verdict["bunched_chunks"]
    chunks = f"; {bunched} chunk{'' if bunched == 1 else 's'} bunched" if bunched else ""
    return (f"WARNING: load generator saturated ({' and '.join(over)} over {limit:g} ms{chunks}): "
            f"{', '.join(verdict['affected'])} are inflated by up to that lag; "
            "use fewer sessions per process or more workers")
