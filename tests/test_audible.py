"""The audible-onset detector behind ``ttfa_ms``, calibrated on real speech (pure, no clock).

Rules of this module: no sockets, no trio; audio goes through a
:class:`~rtbench.protocol.turn.TurnTracker` as deltas that all arrive at t = 0, so the player
timeline is the audio's own and the onset time is exactly the onset's place in the audio.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

from rtbench.client.workload import load_utterance
from rtbench.metrics.records import TurnRecord
from rtbench.protocol import Event, EventType
from rtbench.protocol.audio import SAMPLES_PER_MS, Pcm
from rtbench.protocol.turn import TurnTracker

from conftest import REPO

UTTERANCES = ("en_weather", "en_timer", "en_booking", "ko_greeting")


def heard_at_ms(pcm: Pcm, delta_samples: int, threshold: float = 0.5) -> float | None:
    """ttfa_ms of a response carrying ``pcm`` in deltas of ``delta_samples`` (T_eos = 0)."""
    tracker = TurnTracker(TurnRecord("t", "r", "m", 0, None, 0, "u"), audible_threshold=threshold)
    tracker.on_eos_sent(0.0)
    tracker.on_event(Event(EventType.RESPONSE_CREATED, {"response": {"id": "resp_1"}}), 0.0)
    for at in range(0, len(pcm), delta_samples):
        delta = base64.b64encode(pcm[at:at + delta_samples].tobytes()).decode()
        tracker.on_event(Event(EventType.AUDIO_DELTA, {"response_id": "resp_1", "item_id": "i",
                                                       "delta": delta}), 0.0)
    return tracker.finalize(timed_out=False).ttfa_ms


@pytest.mark.parametrize("name", UTTERANCES)
@pytest.mark.parametrize("delta_ms", [10, 37, 100])  # 37 ms: deltas that split frames
def test_the_onset_is_where_the_offline_detector_finds_speech(name: str, delta_ms: int) -> None:
    utt = load_utterance(REPO / "workloads" / "audio" / f"{name}.wav")
    # the offline detector (the workload's end-of-speech finder) puts speech at this frame;
    # streamed in deltas of any size the onset detector finds the same window, to the sample
    expected = utt.speech_start_sample / SAMPLES_PER_MS
    assert heard_at_ms(utt.samples, delta_ms * SAMPLES_PER_MS) == pytest.approx(expected, abs=1e-9)


def test_dither_and_digital_silence_are_not_audible_and_a_quiet_voice_is() -> None:
    rng = np.random.default_rng(1)
    dither = rng.normal(0.0, 3.0, 24_000).astype(np.int16)  # about -80 dBFS RMS
    assert heard_at_ms(np.zeros(24_000, dtype=np.int16), 4_800) is None
    assert heard_at_ms(dither, 4_800) is None
    # -40 dBFS RMS speech-level noise after 250 ms of dither is heard at 250 ms; at a higher
    # threshold (0.8 = -30 dBFS) it is not
    quiet = (rng.normal(0.0, 328.0, 24_000)).astype(np.int16)
    pcm = np.concatenate([dither[:250 * SAMPLES_PER_MS], quiet])
    assert heard_at_ms(pcm, 2_400) == pytest.approx(250.0, abs=1e-9)
    assert heard_at_ms(pcm, 2_400, threshold=0.8) is None
