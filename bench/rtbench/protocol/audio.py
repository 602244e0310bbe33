"""PCM16 audio helpers and the energy voice-activity detector.

One detector serves both sides so that they agree on where speech ends: the workload uses it
offline to find the end-of-speech position of each utterance, the simulator runs it on the audio
it receives to decide ``speech_started`` / ``speech_stopped``. Pure numpy, no I/O, no clock.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # PCM16 mono: 48 bytes per millisecond
SAMPLES_PER_MS = SAMPLE_RATE // 1000
FRAME_MS = 10
FRAME_SAMPLES = FRAME_MS * SAMPLES_PER_MS

Pcm = npt.NDArray[np.int16]

#: Default level above which a 10 ms window of a model's *output* audio is audible (ttfa), on
#: the VAD's 0..1 scale (0.5 = -45 dBFS frame RMS, see :func:`threshold_dbfs`): digital silence
#: and dither (below -70 dBFS) never count, and the onset of each bundled utterance is found
#: at the frame the offline detector finds (tests/test_audible.py calibrates it).
AUDIBLE_THRESHOLD = 0.5


def threshold_dbfs(threshold: float) -> float:
    """Map the API's 0..1 VAD ``threshold`` to a frame RMS level: 0.5 -> -45 dBFS."""
    return -70.0 + 50.0 * threshold


def frame_levels_dbfs(samples: Pcm) -> npt.NDArray[np.float64]:
    """RMS level in dBFS of each whole 10 ms frame (a trailing partial frame is ignored)."""
    n = len(samples) // FRAME_SAMPLES
    if n == 0:
        return np.zeros(0)
    frames = samples[: n * FRAME_SAMPLES].astype(np.float64).reshape(n, FRAME_SAMPLES)
    rms = np.sqrt(np.mean(frames * frames, axis=1)) / 32768.0
    levels: npt.NDArray[np.float64] = 20.0 * np.log10(np.maximum(rms, 1e-10))
    return levels


def speech_bounds(samples: Pcm, threshold: float = 0.5) -> tuple[int, int] | None:
    """(first, end) sample of speech, frame-aligned; ``end`` is exclusive. None if silent.

    A trailing partial frame is judged zero-padded, as it will be when streamed in chunks.
    """
    tail = -len(samples) % FRAME_SAMPLES
    if tail:
        samples = np.concatenate([samples, np.zeros(tail, dtype=samples.dtype)])
    speech = np.flatnonzero(frame_levels_dbfs(samples) > threshold_dbfs(threshold))
    if len(speech) == 0:
        return None
    return int(speech[0]) * FRAME_SAMPLES, (int(speech[-1]) + 1) * FRAME_SAMPLES


def b64_audio_ms(b64: str) -> float:
    """Duration of base64 PCM16 audio without decoding it (padding counted exactly)."""
    n = len(b64)
    padding = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return (n * 3 // 4 - padding) / BYTES_PER_MS


def b64_to_pcm(b64: str) -> Pcm:
    raw = base64.b64decode(b64, validate=False)
    if len(raw) % 2:
        raw = raw[:-1]
    return np.frombuffer(raw, dtype="<i2")


def frame_energies(samples: Pcm) -> npt.NDArray[np.float64]:
    """Sum of squared samples of each whole 10 ms frame (a trailing partial frame is ignored)."""
    whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = samples[:whole].astype(np.float64).reshape(-1, FRAME_SAMPLES)
    energies: npt.NDArray[np.float64] = np.einsum("ij,ij->i", frames, frames)
    return energies


@dataclass(frozen=True, slots=True)
class ChunkLevels:
    """What the VAD needs from one base64 audio chunk: its length and, when it holds whole
    frames only, each frame's energy (None otherwise: the VAD must see the samples)."""

    samples: int
    energies: npt.NDArray[np.float64] | None


#: Chunks up to this long (base64 characters; 6,400 is 100 ms) are memoized by chunk_levels.
CACHED_CHUNK_CHARS = 16_000
CACHED_CHUNKS = 2048


def chunk_levels(b64: str) -> ChunkLevels:
    """Decode a base64 PCM16 chunk into :class:`ChunkLevels`; ValueError if not base64.

    Why memoized: a load generator streams the same prerecorded chunks to every session, so
    a simulator serving a thousand sessions would decode each one a thousand times (decoding
    and frame energies were a fifth of its core at 1,400 sessions x 100 ms). The result is a
    pure function of the text, so a hit gives exactly what decoding would. Bounded: at most
    ``CACHED_CHUNKS`` chunks of at most ``CACHED_CHUNK_CHARS`` characters (under 35 MB).
    """
    if len(b64) > CACHED_CHUNK_CHARS:
        return _chunk_levels(b64)
    return _cached_chunk_levels(b64)


def _chunk_levels(b64: str) -> ChunkLevels:
    pcm = b64_to_pcm(b64)
    if len(pcm) % FRAME_SAMPLES:
        return ChunkLevels(len(pcm), None)
    energies = frame_energies(pcm)
    energies.setflags(write=False)  # shared by every session that sends this chunk
    return ChunkLevels(len(pcm), energies)


_cached_chunk_levels = functools.lru_cache(maxsize=CACHED_CHUNKS)(_chunk_levels)


@dataclass(frozen=True, slots=True)
class VadDecision:
    """A change of state: ``started`` or ``stopped``, with positions on the input timeline."""

    kind: str
    audio_ms: int          # the value for audio_start_ms / audio_end_ms
    speech_edge_ms: int    # where speech really began (started) or ended (stopped)


class EnergyVad:
    """Streaming frame-energy VAD with the API's threshold, prefix padding and silence window.

    ``feed`` takes audio as it arrives and returns decisions. ``audio_end_ms`` of a stop includes
    the silence window, as the SDK docstring says the service's does.
    """

    def __init__(self, threshold: float, prefix_padding_ms: int, silence_duration_ms: int) -> None:
        self.level = threshold_dbfs(threshold)
        # ``level > self.level`` as a sum of squares: the simulator runs this on every chunk
        # it receives, and skipping sqrt/log per frame keeps its hot path short.
        self._energy_above = FRAME_SAMPLES * (32768.0 * 10.0 ** (self.level / 20.0)) ** 2
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_frames = max(1, -(-silence_duration_ms // FRAME_MS))
        self.silence_duration_ms = silence_duration_ms
        self.frames_seen = 0
        self.in_speech = False
        self.last_speech_frame = -1
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, samples: Pcm) -> list[VadDecision]:
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = samples[whole:].copy()
        return self.feed_frames(frame_energies(samples[:whole]))

    @property
    def frame_aligned(self) -> bool:
        """No partial frame is pending, so whole frames may be fed as energies."""
        return not len(self._pending)

    def feed_frames(self, energies: npt.NDArray[np.float64]) -> list[VadDecision]:
        """Feed whole frames by their energies (see :func:`frame_energies`); only valid
        while :attr:`frame_aligned`."""
        decisions: list[VadDecision] = []
        for loud in (energies > self._energy_above).tolist():
            idx = self.frames_seen
            self.frames_seen += 1
            if loud:
                self.last_speech_frame = idx
                if not self.in_speech:
                    self.in_speech = True
                    start = idx * FRAME_MS
                    decisions.append(
                        VadDecision("started", max(0, start - self.prefix_padding_ms), start))
            elif self.in_speech and idx - self.last_speech_frame >= self.silence_frames:
                self.in_speech = False
                end = (self.last_speech_frame + 1) * FRAME_MS
                decisions.append(VadDecision("stopped", end + self.silence_duration_ms, end))
        return decisions

    def reset(self) -> None:
        """Forget speech in progress (after a commit or a clear)."""
        self.in_speech = False
