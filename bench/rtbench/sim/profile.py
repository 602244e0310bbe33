"""Latency model of one simulated target (a region × model): distributions as data.

Each latency is a lognormal given by its median and p99 (equal values give a constant, which
tests use to check rtbench's measurements against exactly what was injected). Profiles can be
read from TOML (``[profile]`` or named ``[profiles.<name>]`` tables, see README) so one
simulator can stand in for a region × model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ..protocol.session_config import REASONING_EFFORTS

Z99 = 2.3263478740408408  # standard normal quantile at 0.99

#: Extra first-audio delay (ms) per ``reasoning.effort`` (§10.2): illustrative, not measured
#: (a higher effort thinks longer before it speaks; aiewf-eval saw ~770 ms between minimal and
#: medium on another provider's model). A session that sets no effort gets none.
DEFAULT_EFFORT_DELAY_MS: Mapping[str, float] = MappingProxyType(
    {"minimal": 0.0, "low": 200.0, "medium": 500.0, "high": 1000.0, "xhigh": 2000.0})


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

    Reasoning models (protocol reference §10.2, §10.3): the response's audio starts with
    ``silence_pad_ms`` of digital silence; with probability ``preamble_probability`` a
    preamble message item of ``preamble_ms`` audio comes first, and the answer item's first
    audio follows ``answer_delay`` after the preamble has played (in real time from its first
    byte). So first audible = first audio + pad, and the answer is heard pad + preamble +
    answer delay after the first byte. A session (or response) that sets ``reasoning.effort``
    waits ``effort_delay_ms[effort]`` more for its first audio.
    """

    name: str = "default"
    handshake: Dist = field(default_factory=lambda: Dist(0.0))
    vad_delay: Dist = field(default_factory=lambda: Dist(0.0))
    first_audio: Dist = field(default_factory=lambda: Dist(700.0, 1400.0))
    response_audio_ms: int = 1500
    delta_ms: int = 100
    realtime_factor: float = 2.0  # output audio generated at this multiple of real time
    transcript: str = "Sure, here is what I found for you."
    transcription_delay: Dist = field(default_factory=lambda: Dist(150.0, 400.0))
    session_max_s: float = 3600.0
    # Capacity: each concurrent session beyond ``knee_sessions`` adds this much first-audio
    # delay (0 = no knee): latency that rises with load, as a sweep should find.
    knee_sessions: int = 0
    per_session_over_knee_ms: float = 0.0
    silence_pad_ms: int = 0
    preamble_ms: int = 0
    preamble_probability: float = 1.0
    answer_delay: Dist = field(default_factory=lambda: Dist(0.0))
    effort_delay_ms: Mapping[str, float] = field(default_factory=lambda: DEFAULT_EFFORT_DELAY_MS)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.effort_delay_ms) - set(REASONING_EFFORTS))
        if unknown or any(v < 0 for v in self.effort_delay_ms.values()):
            raise ValueError(f"effort_delay_ms takes non-negative values for "
                             f"{', '.join(REASONING_EFFORTS)}"
                             + (f", not {unknown[0]!r}" if unknown else ""))
        if self.silence_pad_ms < 0 or self.preamble_ms < 0 or not (
                0.0 <= self.preamble_probability <= 1.0):
            raise ValueError("silence_pad_ms and preamble_ms must be non-negative, "
                             "preamble_probability within 0..1")
        if self.delta_ms <= 0 or self.response_audio_ms <= 0 or self.realtime_factor <= 0:
            raise ValueError("delta_ms, response_audio_ms and realtime_factor must be positive")
        if self.session_max_s <= 0 or self.knee_sessions < 0 or self.per_session_over_knee_ms < 0:
            raise ValueError("session_max_s must be positive, knee values non-negative")

    def effort_delay(self, effort: str | None) -> float:
        """Extra first-audio delay (ms) of a response at ``effort`` (0 when none is set)."""
        return 0.0 if effort is None else float(self.effort_delay_ms.get(effort, 0.0))

    def load_penalty_ms(self, active_sessions: int) -> float:
        """Extra first-audio delay at ``active_sessions`` concurrent sessions."""
        if self.knee_sessions <= 0:
            return 0.0
        return max(0, active_sessions - self.knee_sessions) * self.per_session_over_knee_ms


class ProfileError(ValueError):
    """A profile table that cannot be used; one line naming the file and key."""


#: TOML key -> Profile field, for the latency distributions (a number or {median, p99}).
_DIST_KEYS = {"handshake_ms": "handshake", "vad_delay_ms": "vad_delay",
              "first_audio_ms": "first_audio", "transcription_ms": "transcription_delay",
              "answer_delay_ms": "answer_delay"}
_PLAIN_KEYS = {"response_audio_ms": int, "delta_ms": int, "realtime_factor": float,
               "session_max_s": float, "knee_sessions": int, "per_session_over_knee_ms": float,
               "transcript": str, "silence_pad_ms": int, "preamble_ms": int,
               "preamble_probability": float}


def _dist(raw: object, where: str) -> Dist:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Dist(float(raw))
    if isinstance(raw, Mapping) and set(raw) <= {"median", "p99"} and "median" in raw:
        p99 = raw.get("p99")
        return Dist(float(raw["median"]), None if p99 is None else float(p99))
    raise ProfileError(f"{where} must be a number or {{ median = ..., p99 = ... }}")


def _effort_delays(raw: object, where: str) -> Mapping[str, float]:
    """``effort_delay_ms = { low = 300, ... }``: the efforts named replace the defaults."""
    if not isinstance(raw, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()):
        raise ProfileError(f"{where} must be a table of milliseconds by effort "
                           f"({', '.join(REASONING_EFFORTS)})")
    return MappingProxyType({**DEFAULT_EFFORT_DELAY_MS,
                             **{str(k): float(v) for k, v in raw.items()}})


def profile_from_table(table: Mapping[str, Any], where: str, name: str = "default") -> Profile:
    """A :class:`Profile` from one TOML table; unknown keys and bad values are errors."""
    unknown = sorted(set(table) - set(_DIST_KEYS) - set(_PLAIN_KEYS) - {"effort_delay_ms"})
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}")
    changes: dict[str, Any] = {"name": name}
    try:
        for key, attr in _DIST_KEYS.items():
            if key in table:
                changes[attr] = _dist(table[key], f"{where}.{key}")
        for key, typ in _PLAIN_KEYS.items():
            if key in table:
                value = table[key]
                ok = isinstance(value, typ) or (typ is float and isinstance(value, int))
                if not ok or isinstance(value, bool):
                    raise ProfileError(f"{where}.{key} must be {typ.__name__}")
                changes[key] = typ(value)
        if "effort_delay_ms" in table:
            changes["effort_delay_ms"] = _effort_delays(table["effort_delay_ms"],
                                                        f"{where}.effort_delay_ms")
        return replace(Profile(), **changes)
    except ValueError as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"{where}: {exc}") from None


def profile_from_document(doc: Mapping[str, Any], src: str, name: str | None = None) -> Profile:
    """``[profile]``, or ``[profiles.<name>]`` chosen by ``name`` (needed if there are several)."""
    named = doc.get("profiles", {})
    if name is not None:
        if name not in named:
            raise ProfileError(f"{src}: no [profiles.{name}]; have {', '.join(named) or 'none'}")
        return profile_from_table(named[name], f"{src}: profiles.{name}", name)
    if "profile" in doc:
        return profile_from_table(doc["profile"], f"{src}: profile")
    if len(named) == 1:
        [(only, table)] = named.items()
        return profile_from_table(table, f"{src}: profiles.{only}", only)
    if named:
        raise ProfileError(f"{src}: several profiles ({', '.join(named)}); choose one by name")
    raise ProfileError(f"{src}: no [profile] or [profiles.<name>] table")


