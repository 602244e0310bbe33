"""rtbench's own TTFA measurement error, measured against a simulator whose latency is known.

The simulator is told to answer with a constant first-audio latency (measured server-side from
the arrival of the chunk holding the end of speech). Every completed turn's TTFA minus that
constant is rtbench's error: loopback transit both ways, the client's scheduling delay on the
end-of-speech send stamp and on the receive stamp. The simulator's own emission lateness (from
its stats file) is printed beside it, because a late simulator shows up in the error too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Published target (issue: "≤ 1 ms p50 and ≤ 2 ms p99 at 50 sessions").
TARGET_P50_MS = 1.0
TARGET_P99_MS = 2.0


def ttfa_error(turns: pd.DataFrame, injected_ms: float) -> dict[str, Any]:
    """Signed and absolute TTFA error (ms) of the completed turns against the injected value."""
    ok = turns[(turns["status"] == "ok") & turns["ttfa_ms"].notna()]
    err = ok["ttfa_ms"].to_numpy(dtype=np.float64) - injected_ms
    if len(err) == 0:
        return {"turns": 0}
    absolute = np.abs(err)
    return {
        "turns": len(err),
        "injected_ms": injected_ms,
        "error_mean_ms": float(err.mean()),
        "error_min_ms": float(err.min()),
        "abs_error_p50_ms": float(np.percentile(absolute, 50)),
        "abs_error_p99_ms": float(np.percentile(absolute, 99)),
        "abs_error_max_ms": float(absolute.max()),
        "meets_target": bool(np.percentile(absolute, 50) <= TARGET_P50_MS
                             and np.percentile(absolute, 99) <= TARGET_P99_MS),
    }


def describe(result: dict[str, Any], sessions: int, sim_lateness: dict[str, Any] | None) -> str:
    if not result.get("turns"):
        return "calibration: no completed turn, nothing to measure"
    lines = [
        f"calibration at {sessions} sessions, {result['turns']} turns, injected first audio "
        f"{result['injected_ms']:g} ms:",
        f"  rtbench TTFA error: p50 {result['abs_error_p50_ms']:.2f} ms, "
        f"p99 {result['abs_error_p99_ms']:.2f} ms, max {result['abs_error_max_ms']:.2f} ms "
        f"(mean signed {result['error_mean_ms']:+.2f} ms)",
        f"  target p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms: "
        f"{'met' if result['meets_target'] else 'NOT met'}",
    ]
    if sim_lateness and sim_lateness.get("count"):
        lines.append(f"  simulator's own send lateness (included above): p50 "
                     f"{sim_lateness.get('p50', 0):.2f} ms, p99 {sim_lateness.get('p99', 0):.2f} ms")
    return "\n".join(lines)
