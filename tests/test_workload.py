"""Audio loading, end-of-speech detection, chunk plans and the energy VAD."""

from __future__ import annotations

import base64
import wave
from pathlib import Path

import numpy as np
import pytest

from rtbench.client.workload import MAX_UTTERANCE_BYTES, WorkloadError, load_utterance, plan_chunks
from rtbench.config.scenario import Scenario
from rtbench.protocol.audio import (
    FRAME_SAMPLES,
    SAMPLES_PER_MS,
    EnergyVad,
    b64_audio_ms,
    b64_to_pcm,
    chunk_levels,
    speech_bounds,
)


def tone(ms: int, amp: int = 8000) -> np.ndarray:
    t = np.arange(ms * SAMPLES_PER_MS) / 24000
    return (amp * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * SAMPLES_PER_MS, dtype=np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate: int = 24000, channels: int = 1,
              width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def test_speech_bounds_are_frame_aligned() -> None:
    pcm = np.concatenate([silence(100), tone(1000), silence(300)])
    assert speech_bounds(pcm) == (100 * SAMPLES_PER_MS, 1100 * SAMPLES_PER_MS)
    assert speech_bounds(silence(500)) is None


def test_vad_emits_started_and_stopped_with_silence_window() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=200)
    decisions = []
    stream = np.concatenate([silence(500), tone(1000), silence(400)])
    for i in range(0, len(stream), 20 * SAMPLES_PER_MS):  # 20 ms chunks
        decisions += vad.feed(stream[i : i + 20 * SAMPLES_PER_MS])
    assert [(d.kind, d.audio_ms, d.speech_edge_ms) for d in decisions] == [
        ("started", 200, 500),
        ("stopped", 1700, 1500),
    ]


def test_vad_handles_chunks_that_split_frames() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100)
    stream = np.concatenate([tone(300), silence(300)])
    decisions = []
    for i in range(0, len(stream), 7 * FRAME_SAMPLES // 10):
        decisions += vad.feed(stream[i : i + 7 * FRAME_SAMPLES // 10])
    assert [d.kind for d in decisions] == ["started", "stopped"]
    assert decisions[1].speech_edge_ms == 300


def test_memoized_chunk_levels_decide_as_the_samples_do() -> None:
    """The simulator feeds frame energies of memoized chunks while the VAD is frame-aligned
    and samples otherwise; either way the decisions are those of feeding every sample."""
    stream = np.concatenate([silence(200), tone(600), silence(300), tone(250), silence(400)])
    sizes = [20, 20, 7, 13, 100] * 30  # ms: aligned, then a split frame, then aligned again
    chunks, pos = [], 0
    for ms in sizes:
        chunks.append(base64.b64encode(stream[pos : pos + ms * SAMPLES_PER_MS].tobytes()).decode())
        pos += ms * SAMPLES_PER_MS
    by_samples = EnergyVad(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100)
    by_levels = EnergyVad(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100)
    expected, got, fed_as_frames = [], [], 0
    for text in chunks:
        expected += by_samples.feed(b64_to_pcm(text))
        levels = chunk_levels(text)
        assert levels.samples == len(b64_to_pcm(text))
        if levels.energies is not None and by_levels.frame_aligned:
            got += by_levels.feed_frames(levels.energies)
            fed_as_frames += 1
        else:
            got += by_levels.feed(b64_to_pcm(text))
    assert got == expected and [d.kind for d in got] == ["started", "stopped"] * 2
    assert 0 < fed_as_frames < len(chunks)
    assert chunk_levels(chunks[0]) is chunk_levels(chunks[0][:-1] + chunks[0][-1])  # one entry
    with pytest.raises(ValueError):
        chunk_levels("abc")  # incorrect padding


def test_repository_utterances_load_with_known_end_of_speech(scenario: Scenario) -> None:
    langs = set()
    for name in scenario.utterances:
        utt = load_utterance(scenario.audio_dir / f"{name}.wav")
        assert 1500 <= utt.speech_end_ms - utt.speech_start_sample / SAMPLES_PER_MS <= 6000
        assert abs(utt.duration_ms - utt.speech_end_ms) < 20  # no trailing silence in the source
        langs.add(name.split("_")[0])
    assert len(scenario.utterances) >= 5 and {"en", "ko"} <= langs


def test_chunk_plan_marks_the_chunk_holding_the_last_speech_sample(tmp_path: Path) -> None:
    pcm = np.concatenate([silence(100), tone(990)])  # speech ends at 1090 ms
    utt = load_utterance(write_wav(tmp_path / "u.wav", pcm))
    plan = plan_chunks(utt, 20)
    assert utt.speech_end_ms == 1090
    assert plan.eos_chunk == 54  # chunk 54 covers [1080, 1100) ms
    assert len(plan.frames) == 55
    assert b64_audio_ms(plan.frames[0].split('"audio":"')[1].rstrip('"}')) == 20


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rate": 16000}, "16000 Hz; rtbench needs 24000 Hz"),
        ({"channels": 2}, "2 channels; rtbench needs mono"),
        ({"width": 1}, "8-bit samples; rtbench needs PCM16"),
    ],
)
def test_unsupported_audio_is_rejected_with_a_clear_message(
    tmp_path: Path, kw: dict[str, int], message: str
) -> None:
    path = write_wav(tmp_path / "bad.wav", tone(500), **kw)
    with pytest.raises(WorkloadError, match=message):
        load_utterance(path)


def test_missing_and_non_wav_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="not found"):
        load_utterance(tmp_path / "nope.wav")
    (tmp_path / "x.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WorkloadError, match="not a PCM WAV"):
        load_utterance(tmp_path / "x.wav")
    with pytest.raises(WorkloadError, match="no speech"):
        load_utterance(write_wav(tmp_path / "quiet.wav", silence(500)))


def test_a_truncated_wav_or_a_directory_is_one_line(tmp_path: Path) -> None:
    good = (Path(__file__).resolve().parent.parent / "workloads" / "audio" / "en_timer.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good[: len(good) // 2 + 1])
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    for path, says in ((cut, "truncated or corrupt"), (folder, "is a directory")):
        with pytest.raises(WorkloadError) as info:
            load_utterance(path)
        assert says in str(info.value) and "\n" not in str(info.value)


def test_a_huge_wav_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.wav"
    with open(huge, "wb") as fh:
        fh.truncate(MAX_UTTERANCE_BYTES + 1)          # sparse: no real disk used
    with pytest.raises(WorkloadError, match="longer than"):
        load_utterance(huge)
