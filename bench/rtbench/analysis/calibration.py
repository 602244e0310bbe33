"""rtbench's own measurement error on TTFB, TTFA and the answer's TTFA, against a simulator
whose every timing is known.

The simulator is told to answer with constants (``Injection``): first audio a fixed time after
the arrival of the chunk holding the end of speech, a leading silence pad in the audio, a
preamble item of fixed length in every response and the answer item a fixed delay after the
preamble has played (protocol reference §10.2, §10.3; without a preamble the answer is the first
item). Nothing is drawn at random, so what each
turn should measure is known exactly and the same for every turn:

* ``ttfb``   = first audio;
* ``ttfa``   = first audio + pad (the onset is placed on a real-time player's timeline that
  starts at the first byte; the detector decides per 10 ms window, so a pad that is not a whole
  number of windows is heard up to one window later);
* ``ttfa_answer`` = ttfa + preamble + answer delay (the answer item has no pad).

Each completed, non-premature turn's measurement minus that value is rtbench's error on it:
loopback transit both ways, the client's scheduling delay on the end-of-speech send stamp and on
the receive stamp, and (for the audible columns) the onset detector. The simulator's own
emission lateness (from its stats file) is printed beside it, because a late simulator shows up
in the error too. A turn that does not have the injected shape (another number of output
items) is counted as a mismatch: the measurement cannot be checked on it. Premature turns (the
default workload holds an utterance with a pause the server takes for the end) are left out,
as they are of every percentile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..protocol.audio import FRAME_MS

#: Published targets on the first-byte error (issue: "≤ 1 ms p50 and ≤ 2 ms p99 at 50 sessions").
TARGET_P50_MS = 1.0
TARGET_P99_MS = 2.0
#: The audible columns: within one detector window of the injected onset (p99).
TARGET_AUDIBLE_MS = float(FRAME_MS)
METRICS = ("ttfb_ms", "ttfa_ms", "ttfa_answer_ms")


@dataclass(frozen=True, slots=True)
class Injection:
    """What the simulator is told to do, in ms; every response the same."""

    first_audio_ms: float = 700.0
    silence_pad_ms: int = 250
    preamble_ms: int = 400
    answer_delay_ms: float = 150.0

    def expected(self) -> dict[str, float]:
        """What each turn should measure, per metric."""
        onset = self.first_audio_ms + self.silence_pad_ms
        answer = onset + self.preamble_ms + self.answer_delay_ms if self.preamble_ms else onset
        return {"ttfb_ms": self.first_audio_ms, "ttfa_ms": onset, "ttfa_answer_ms": answer}

    @property
    def output_items(self) -> int:
        """Message items each response has: the preamble and the answer, or the answer."""
        return 2 if self.preamble_ms else 1

    def simulator_args(self) -> tuple[str, ...]:
        """``rtbench serve`` flags that make the simulator answer exactly so."""
        first = f"{self.first_audio_ms:g}"
        return ("--first-audio-ms", first, "--first-audio-p99-ms", first,
                "--silence-pad-ms", str(self.silence_pad_ms), "--preamble-ms",
                str(self.preamble_ms), "--preamble-probability", "1",
                "--answer-delay-ms", f"{self.answer_delay_ms:g}")


def _stats(err: np.ndarray, p50_limit: float | None, p99_limit: float) -> dict[str, Any]:
    absolute = np.abs(err)
    p50, p99 = float(np.percentile(absolute, 50)), float(np.percentile(absolute, 99))
    return {"error_mean_ms": float(err.mean()), "error_min_ms": float(err.min()),
            "abs_error_p50_ms": p50, "abs_error_p99_ms": p99,
            "abs_error_max_ms": float(absolute.max()),
            "meets_target": bool((p50_limit is None or p50 <= p50_limit) and p99 <= p99_limit)}


def measurement_error(turns: pd.DataFrame, injection: Injection) -> dict[str, Any]:
    """Per metric, the signed and absolute error (ms) of the completed turns' measurements
    against what ``injection`` makes each of them (see the module docstring)."""
    ok = turns[turns["status"] == "ok"] if len(turns) else turns
    premature = int(ok["premature"].sum()) if "premature" in ok else 0
    timed = ok[~ok["premature"].astype(bool)] if "premature" in ok else ok
    shaped = timed[timed["output_items"] == injection.output_items]
    result: dict[str, Any] = {"turns": len(shaped), "premature": premature,
                              "mismatched": len(timed) - len(shaped),
                              "injected": asdict(injection), "metrics": {}}
    if not len(shaped):
        return result
    expected = injection.expected()
    for metric in METRICS:
        values = shaped[metric].dropna().to_numpy(dtype=np.float64)
        if not len(values):
            continue
        first_byte = metric == "ttfb_ms"
        result["metrics"][metric] = {
            "expected_ms": expected[metric], "turns": len(values),
            **_stats(values - expected[metric], TARGET_P50_MS if first_byte else None,
                     TARGET_P99_MS if first_byte else TARGET_AUDIBLE_MS)}
    result["meets_target"] = len(result["metrics"]) == len(METRICS) and all(
        m["meets_target"] for m in result["metrics"].values())
    return result


def describe(result: dict[str, Any], sessions: int, sim_lateness: dict[str, Any] | None) -> str:
    if not result.get("turns"):
        return "calibration: no completed turn of the injected shape, nothing to measure"
    inj = result["injected"]
    left = [f"{result[k]} {k}" for k in ("premature", "mismatched") if result.get(k)]
    lines = [
        f"calibration at {sessions} sessions, {result['turns']} turns"
        f"{' (' + ', '.join(left) + ' left out)' if left else ''}; injected: first audio "
        f"{inj['first_audio_ms']:g} ms, silence pad {inj['silence_pad_ms']} ms, preamble "
        f"{inj['preamble_ms']} ms, answer delay {inj['answer_delay_ms']:g} ms",
    ]
    for metric in METRICS:
        m = result["metrics"].get(metric)
        name = metric.removesuffix("_ms")
        if m is None:
            lines.append(f"  {name:<11} not measured")
            continue
        target = (f"p50 <= {TARGET_P50_MS:g}, p99 <= {TARGET_P99_MS:g}" if metric == "ttfb_ms"
                  else f"p99 <= {TARGET_AUDIBLE_MS:g} (one detector window)")
        lines.append(
            f"  {name:<11} expected {m['expected_ms']:g} ms: error p50 {m['abs_error_p50_ms']:.2f}"
            f", p99 {m['abs_error_p99_ms']:.2f}, max {m['abs_error_max_ms']:.2f} ms (mean signed "
            f"{m['error_mean_ms']:+.2f}); target {target}: "
            f"{'met' if m['meets_target'] else 'NOT met'}")
    if sim_lateness and sim_lateness.get("count"):
        lines.append(f"  simulator's own send lateness (included above): p50 "
                     f"{sim_lateness.get('p50', 0):.2f} ms, p99 {sim_lateness.get('p99', 0):.2f} ms")
    return "\n".join(lines)
