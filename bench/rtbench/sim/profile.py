"""Latency model of one simulated target (a region × model): distributions as data.

Each latency is a lognormal given by its median and p99 (equal values give a constant, which
tests use to check rtbench's measurements against exactly what was injected).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

Z99 = 2.3263478740408408  # standard normal quantile at 0.99


@dataclass(frozen=True, slots=True)
class Dist:
    """Lognormal latency in ms by median and p99; ``p99 == median`` is a constant."""

    median_ms: float
    p99_ms: float | None = None

    def __post_init__(self) -> None:
        if self.median_ms < 0 or (self.p99_ms is not None and self.p99_ms < self.median_ms):
            raise ValueError(f"bad distribution: median {self.median_ms}, p99 {self.p99_ms}")

    def sample(self, rng: random.Random) -> float:
        p99 = self.p99_ms if self.p99_ms is not None else self.median_ms
        if self.median_ms == 0 or p99 == self.median_ms:
            return self.median_ms
        sigma = math.log(p99 / self.median_ms) / Z99
        return self.median_ms * math.exp(rng.gauss(0.0, sigma))


@dataclass(frozen=True, slots=True)
class Profile:
    """How one simulated target behaves in time.

    ``first_audio`` is measured from the arrival of the audio chunk holding the end of speech
    (the server-side twin of rtbench's TTFA anchor); if VAD has not decided by then, the first
    delta follows the decision at once. ``vad_delay`` is added after the silence window.
    """

    name: str = "default"
    handshake: Dist = field(default_factory=lambda: Dist(0.0))
    vad_delay: Dist = field(default_factory=lambda: Dist(0.0))
    first_audio: Dist = field(default_factory=lambda: Dist(700.0, 1500.0))
    response_audio_ms: int = 1500
    delta_ms: int = 100
    realtime_factor: float = 2.0  # output audio generated at this multiple of real time
    transcript: str = "Sure, here is what I found for you."
    transcription_delay: Dist = field(default_factory=lambda: Dist(150.0, 400.0))
    session_max_s: float = 3600.0
    # Capacity: each concurrent session beyond ``knee_sessions`` adds this much first-audio delay.
    knee_sessions: int = 0
    per_session_over_knee_ms: float = 0.0
