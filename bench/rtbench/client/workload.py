"""Prerecorded utterances and the chunk plan that streams them.

An utterance is loaded once (numpy PCM16, checked for 24 kHz mono 16-bit), its end of speech is
found with the same detector the simulator uses, and its ``input_audio_buffer.append`` frames
are encoded once per chunk size (JSON text and WebSocket frame), so sessions only pick
ready-made frames to send.
"""

from __future__ import annotations

import base64
import hashlib
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config.scenario import Scenario
from ..process.errors import UserError
from ..protocol import Dialect, Event, EventType, encode
from ..protocol.audio import SAMPLE_RATE, SAMPLES_PER_MS, Pcm, speech_bounds
from ..ws.frame import OutFrame

#: The longest utterance rtbench loads (a spoken turn is seconds; this bounds memory).
MAX_UTTERANCE_S = 120
MAX_UTTERANCE_BYTES = MAX_UTTERANCE_S * SAMPLE_RATE * 2 + 4096   # + any header


class WorkloadError(UserError):
    """An audio file that cannot be used, with a one-line reason naming the file."""


@dataclass(frozen=True, slots=True)
class Utterance:
    name: str
    path: Path
    samples: Pcm
    sha256: str
    speech_start_sample: int
    speech_end_sample: int  # exclusive: one past the last speech sample (P_eos)

    @property
    def duration_ms(self) -> float:
        return len(self.samples) / SAMPLES_PER_MS

    @property
    def speech_end_ms(self) -> float:
        return self.speech_end_sample / SAMPLES_PER_MS


def load_utterance(path: Path) -> Utterance:
    """Read a PCM16 24 kHz mono WAV; reject anything else with a clear reason.

    Every chunk plan holds the whole utterance several times over (samples, encoded frames), so
    a file longer than ``MAX_UTTERANCE_S`` is refused before it is read: a 173 MB WAV once cost
    2.1 GB of RSS with no word."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise WorkloadError(f"audio file {path} is a directory")
        if size > MAX_UTTERANCE_BYTES:
            raise WorkloadError(f"{path}: {size / 1e6:.0f} MB is longer than {MAX_UTTERANCE_S} s of "
                                "PCM16 24 kHz speech; cut it into utterances")
        raw = path.read_bytes()
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            declared = wav.getnframes()
            frames = wav.readframes(declared)
    except FileNotFoundError:
        raise WorkloadError(f"audio file not found: {path}") from None
    except OSError as exc:
        raise WorkloadError(f"audio file {path}: {exc.strerror or exc}") from None
    except (wave.Error, EOFError) as exc:
        raise WorkloadError(f"{path}: not a PCM WAV file ({exc})") from None
    if width != 2:
        raise WorkloadError(f"{path}: {8 * width}-bit samples; rtbench needs PCM16 (16-bit)")
    if channels != 1:
        raise WorkloadError(f"{path}: {channels} channels; rtbench needs mono")
    if rate != SAMPLE_RATE:
        raise WorkloadError(f"{path}: {rate} Hz; rtbench needs {SAMPLE_RATE} Hz")
    if len(frames) != declared * 2:
        raise WorkloadError(f"{path}: its header declares {declared} samples but the file holds "
                            f"{len(frames) // 2} (a truncated or corrupt file)")
    samples = np.frombuffer(frames, dtype="<i2").copy()
    bounds = speech_bounds(samples)
    if bounds is None:
        raise WorkloadError(f"{path}: no speech found (all frames below -45 dBFS)")
    return Utterance(
        name=path.stem,
        path=path,
        samples=samples,
        sha256=hashlib.sha256(raw).hexdigest(),
        speech_start_sample=bounds[0],
        speech_end_sample=bounds[1],
    )


def load_utterances(sc: Scenario) -> list[Utterance]:
    """The scenario's utterances (``name`` is ``audio_dir/name.wav``, or a file name)."""
    return [load_utterance(sc.audio_dir / (name if name.endswith(".wav") else f"{name}.wav"))
            for name in sc.utterances]


def append_frame(pcm: Pcm) -> str:
    """The wire text of one ``input_audio_buffer.append`` (same name in both dialects)."""
    audio = base64.b64encode(pcm.astype("<i2").tobytes()).decode()
    text = encode(Event(EventType.INPUT_AUDIO_APPEND, {"audio": audio}), Dialect.GA)
    assert text is not None
    return text


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """An utterance cut into chunk frames, with the index of the chunk holding P_eos.

    ``wire`` holds the same frames as ready-made WebSocket messages (header and payload built
    once per run, only the per-send mask left), shared by every session that speaks them.
    """

    utterance: Utterance
    chunk_ms: int
    frames: tuple[str, ...]
    eos_chunk: int
    speech_start_chunk: int
    wire: tuple[OutFrame, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire", tuple(OutFrame(f) for f in self.frames))


def plan_chunks(utt: Utterance, chunk_ms: int) -> ChunkPlan:
    """Cut ``utt`` in ``chunk_ms`` pieces, zero-padding the last one to a whole chunk."""
    size = chunk_ms * SAMPLES_PER_MS
    n = -(-len(utt.samples) // size)
    padded = np.zeros(n * size, dtype=np.int16)
    padded[: len(utt.samples)] = utt.samples
    frames = tuple(append_frame(padded[i * size : (i + 1) * size]) for i in range(n))
    return ChunkPlan(utt, chunk_ms, frames, eos_chunk=(utt.speech_end_sample - 1) // size,
                     speech_start_chunk=utt.speech_start_sample // size)


def silence_frame(chunk_ms: int) -> str:
    return append_frame(np.zeros(chunk_ms * SAMPLES_PER_MS, dtype=np.int16))
