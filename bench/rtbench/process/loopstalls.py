"""How long the event loop was held by one task step at a time: the stalls a timed loop suffers.

Why: a session's chunk can only leave when the loop gets to its sender, so any one step that
runs for milliseconds (a journal flush, encoding histograms, rendering progress, a collection)
delays every session behind it. The loop-lag probe sees that a stall happened; this says which
task held the loop and for how long, so the manifest of every run names its worst one.

:class:`LoopStalls` is a trio Instrument timing each task step (``before_task_step`` /
``after_task_step``: two wall-clock reads and one thread CPU clock read per step, about 2.5 %
of a client core at 150 sessions × 20 ms). Steps longer than ``threshold_s`` are counted
and the longest is kept, with its task's name, the CPU time the thread spent in it (wall
time far above CPU time is preemption: another process, or a hypervisor's steal) and the
time into the run it happened.
"""

from __future__ import annotations

import os
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
        #: name -> [longest step s, its CPU s, steps over the threshold, when (s into the run)]
        self.by_task: dict[str, list[float]] = {}
        self.preempted = 0     # steps over the threshold that used under half of it on CPU
        self._t0 = time.perf_counter()
        self._started = self._cpu_started = 0.0
        self._times0 = os.times()
        # the whole run loop's, once it ended: wall, and the process's user and kernel CPU
        self.wall_s = self.user_s = self.system_s = 0.0

    def before_run(self) -> None:
        self._t0, self._times0 = time.perf_counter(), os.times()

    def after_run(self) -> None:
        """The loop's wall and process CPU time (user and kernel apart: the kernel's share is
        the system calls and the network stack): what the run cost the generator's core."""
        self.wall_s = time.perf_counter() - self._t0
        times = os.times()
        self.user_s = times.user - self._times0.user
        self.system_s = times.system - self._times0.system

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.perf_counter()
        self._cpu_started = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        now = time.perf_counter()
        seconds = now - self._started
        self.steps += 1
        if seconds > self.threshold_s:
            # Wall time against the thread's CPU time: a step that held the loop 20 ms but ran
            # 0.5 ms was the OS (or a hypervisor) taking the core, not work of ours.
            cpu = time.thread_time() - self._cpu_started
            self.over += 1
            self.preempted += cpu < seconds / 2
            seen = self.by_task.get(task.name)
            if seen is None:
                self.by_task[task.name] = [seconds, cpu, 1, now - self._t0]
            else:
                seen[2] += 1
                if seconds > seen[0]:
                    seen[0], seen[1], seen[3] = seconds, cpu, now - self._t0

    def as_dict(self, top: int = 8) -> dict[str, Any]:
        """For the manifest: the worst step, how many exceeded the threshold, and the tasks that
        did, longest first."""
        rows = sorted(self.by_task.items(), key=lambda kv: -kv[1][0])
        worst = rows[0] if rows else ("", [0.0, 0.0, 0, 0.0])
        return {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.user_s + self.system_s, 3),
                "cpu_user_s": round(self.user_s, 3), "cpu_system_s": round(self.system_s, 3),
                "threshold_ms": self.threshold_s * 1000.0, "steps": self.steps,
                "over_threshold": self.over, "preempted": self.preempted,
                "worst_ms": round(worst[1][0] * 1000.0, 3),
                "worst_cpu_ms": round(worst[1][1] * 1000.0, 3), "worst_task": _short(worst[0]),
                "tasks": [{"task": _short(name), "worst_ms": round(s * 1000.0, 3),
                           "worst_cpu_ms": round(cpu * 1000.0, 3), "over_threshold": int(n),
                           "worst_at_s": round(at, 3)}
                          for name, (s, cpu, n, at) in rows[:top]]}


def _short(name: str) -> str:
    """A task name without the package prefix (``rtbench.client.pacer.Pacer.run`` →
    ``client.pacer.Pacer.run``): enough to find the code, short enough to read."""
    return name.removeprefix("rtbench.")


__all__ = ["STALL_S", "LoopStalls"]
