"""How long the event loop was held by one task step at a time: the stalls a timed loop suffers.

Why: a session's chunk can only leave when the loop gets to its sender, so any one step that
runs for milliseconds (a journal flush, encoding histograms, rendering progress, a collection)
delays every session behind it. The loop-lag probe sees that a stall happened; this says which
task held the loop and for how long, so the manifest of every run names its worst one.

:class:`LoopStalls` is a trio Instrument timing each task step (``before_task_step`` /
``after_task_step``: two clock reads per step). Steps longer than ``threshold_s`` are counted
and the longest is kept, with its task's name and the time into the run it happened.
"""

from __future__ import annotations

import time
from typing import Any

import trio
from trio.abc import Instrument

STALL_S = 0.001   # the bound for work that is not per-chunk


class LoopStalls(Instrument):
    """Counts task steps over ``threshold_s``, per task name, keeping each name's longest step
    (pass it to ``trio.run(..., instruments=[...])``)."""

    def __init__(self, threshold_s: float = STALL_S) -> None:
        self.threshold_s = threshold_s
        self.steps = 0
        self.over = 0
        self.by_task: dict[str, list[float]] = {}   # name -> [longest s, steps over, at_s]
        self._t0 = time.perf_counter()
        self._started = 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        now = time.perf_counter()
        seconds = now - self._started
        self.steps += 1
        if seconds > self.threshold_s:
            self.over += 1
            seen = self.by_task.get(task.name)
            if seen is None:
                self.by_task[task.name] = [seconds, 1, now - self._t0]
            else:
                seen[1] += 1
                if seconds > seen[0]:
                    seen[0], seen[2] = seconds, now - self._t0

    def as_dict(self, top: int = 8) -> dict[str, Any]:
        """For the manifest: the worst step, how many exceeded the threshold, and the tasks that
        did, longest first."""
        rows = sorted(self.by_task.items(), key=lambda kv: -kv[1][0])
        worst = rows[0] if rows else ("", [0.0, 0, 0.0])
        return {"threshold_ms": self.threshold_s * 1000.0, "steps": self.steps,
                "over_threshold": self.over, "worst_ms": round(worst[1][0] * 1000.0, 3),
                "worst_task": _short(worst[0]),
                "tasks": [{"task": _short(name), "worst_ms": round(s * 1000.0, 3),
                           "over_threshold": int(n), "worst_at_s": round(at, 3)}
                          for name, (s, n, at) in rows[:top]]}


def _short(name: str) -> str:
    """A task name without the package prefix (``rtbench.client.pacer.Pacer.run`` →
    ``client.pacer.Pacer.run``): enough to find the code, short enough to read."""
    return name.removeprefix("rtbench.")


__all__ = ["STALL_S", "LoopStalls"]
