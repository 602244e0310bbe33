"""Load models as data, and the arrival schedules they imply (pure functions, no clock).

*closed*: ``sessions`` concurrent slots, each running sessions back to back (reconnecting) until
the duration ends, or one session each without a duration; an optional ramp-up spreads the
slots' first starts. *open*: sessions arrive at ``rate`` per second (constant spacing or
Poisson), each start measured against its intended time so late starts show; an arrival that
finds ``sessions`` already running is dropped and counted, never queued silently.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ..config.scenario import ConfigError

KINDS = ("closed", "open")
ARRIVALS = ("constant", "poisson")


@dataclass(frozen=True, slots=True)
class LoadModel:
    kind: str = "closed"
    sessions: int = 10             # closed: concurrency; open: cap on concurrent sessions
    rate_per_s: float = 0.0        # open only
    arrival: str = "constant"      # open only: constant | poisson
    ramp_up_s: float = 0.0         # closed only
    duration_s: float | None = None
    total_sessions: int | None = None  # open only: stop after this many arrivals
    retries: int = 0
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"load model must be one of {KINDS}, got {self.kind!r}")
        if self.sessions < 1:
            raise ConfigError("--sessions must be at least 1")
        if self.kind == "open":
            if self.rate_per_s <= 0:
                raise ConfigError("an open load model needs --rate > 0 (sessions per second)")
            if self.arrival not in ARRIVALS:
                raise ConfigError(f"--arrival must be one of {ARRIVALS}")
            if self.duration_s is None and self.total_sessions is None:
                raise ConfigError("an open load model needs --duration or --total-sessions")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError("--duration must be positive")
        if self.ramp_up_s < 0 or self.retries < 0:
            raise ConfigError("--ramp-up and --retry must not be negative")

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def closed_start_offsets(model: LoadModel) -> list[float]:
    """Seconds after run start at which each closed-model slot starts (ramp-up spread)."""
    n = model.sessions
    return [model.ramp_up_s * i / n for i in range(n)]


def open_arrival_offsets(model: LoadModel) -> Iterator[float]:
    """Intended arrival times (seconds after run start) of an open model, in order."""
    rng = random.Random(model.seed)
    t = 0.0
    k = 0
    while model.total_sessions is None or k < model.total_sessions:
        if model.duration_s is not None and t >= model.duration_s:
            return
        yield t
        k += 1
        t += rng.expovariate(model.rate_per_s) if model.arrival == "poisson" else (
            1.0 / model.rate_per_s)


def backoff_s(model: LoadModel, attempt: int, rng: random.Random) -> float:
    """Delay before retry ``attempt`` (1..): exponential with full jitter, capped."""
    ceiling = min(model.backoff_max_s, model.backoff_s * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)
