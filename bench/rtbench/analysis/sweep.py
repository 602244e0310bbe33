"""Capacity search: the largest load that keeps the budgets. Pure; the command runs the steps.

Step up geometrically from ``start`` (×``factor``) until a level fails its budgets, then
bisect between the last passing and the first failing level down to ``resolution``. A level
where the load generator itself was saturated ends the search: beyond it the figures cannot
be trusted, and the answer is reported as bounded by the generator, not the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.scenario import ConfigError


@dataclass(frozen=True, slots=True)
class SweepSettings:
    start: int = 5
    factor: float = 2.0
    maximum: int = 200
    resolution: int = 1

    def __post_init__(self) -> None:
        if self.start < 1 or self.maximum < self.start:
            raise ConfigError("--start must be >= 1 and <= --max")
        if self.factor <= 1.0:
            raise ConfigError("--factor must be greater than 1")
        if self.resolution < 1:
            raise ConfigError("--resolution must be at least 1")


@dataclass(slots=True)
class Step:
    load: int
    phase: str          # "step" (going up) or "bisect"
    passed: bool
    saturated: bool
    detail: str = ""


@dataclass
class Search:
    """Decides the next load level from the outcomes so far."""

    settings: SweepSettings
    steps: list[Step] = field(default_factory=list)
    best: int | None = None        # largest passing load
    worst: int | None = None       # smallest failing load
    stopped: str | None = None     # why the search ended early

    def next_load(self) -> int | None:
        """The next level to run, or None when the answer is known."""
        s = self.settings
        if self.stopped is not None:
            return None
        if not self.steps:
            return s.start
        if self.worst is None:  # still stepping up
            last = self.steps[-1].load
            if last >= s.maximum:
                self.stopped = f"reached --max {s.maximum} with every level passing"
                return None
            return min(s.maximum, max(last + 1, int(last * s.factor)))
        low = self.best if self.best is not None else 0
        if self.worst - low <= s.resolution:
            return None
        return (low + self.worst) // 2

    def record(self, load: int, passed: bool, saturated: bool, detail: str = "") -> None:
        phase = "step" if self.worst is None else "bisect"
        self.steps.append(Step(load, phase, passed, saturated, detail))
        if saturated:
            self.stopped = (f"load generator saturated at {load}: figures beyond it cannot be "
                            "trusted (use --workers or fewer sessions per process)")
            if passed:
                self.best = max(self.best or 0, load)
            return
        if passed:
            self.best = max(self.best or 0, load)
        else:
            self.worst = load if self.worst is None else min(self.worst, load)

    def answer(self) -> str:
        if self.best is None:
            return (f"no level passed: even {self.steps[0].load} breaks the budgets"
                    if self.steps else "no level was run")
        bound = f" (first failing level: {self.worst})" if self.worst is not None else ""
        note = f"; stopped: {self.stopped}" if self.stopped else ""
        return f"largest load keeping the budgets: {self.best}{bound}{note}"
