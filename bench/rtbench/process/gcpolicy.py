"""Cyclic garbage collection at moments of our choosing, so it does not stop a timed loop.

Why: CPython collects its youngest generation whenever allocations outnumber deallocations
by 700, an older one every tenth time, and everything whenever the long-lived heap grew by a
quarter. A suspended coroutine is a young object, and a loop with a thousand sessions always
holds thousands of them, so even a young collection scans them all. Measured with 1,400
sessions × 100 ms chunks, pauses were 4–12 ms (young), 11–15 ms (older) and 100–190 ms (full,
while sessions ramped up), in the client and in the simulator alike; the simulator's send
lateness p99 was 6–24 ms with automatic collection and 1.7 ms without. Collecting only young
objects on a timer did not help: 3.3 ms per pass at 50 ms intervals, 7 ms at 0.5 s.

These loops make almost no cyclic garbage while they run (about 80 objects in 10 s in steady
state), and a finished session, client or simulated, is freed by reference counting alone (a
test checks it; before, each left 27–77 objects in cycles: 16 KiB per simulated session until
the next full pass). So :class:`ScheduledGc`:

* turns automatic collection off while the loop runs (and back on when it ends);
* collects everything when the process falls idle after work (``idle()``, e.g. the simulator
  with no session left), where a pause delays nobody;
* and every ``full_every_s`` (default 300 s) *if the tracked heap grew* by ``min_growth``
  objects since the last pass (``gc.get_count()[0]`` with collection off counts allocations
  of tracked objects minus their deallocations, so it grows only by what is still alive:
  garbage in cycles, or a larger live set). Memory stays bounded however long the process
  runs, and a steady run whose sessions are freed by reference counting pays no pass at all:
  such a pass (about 0.1–0.2 s at a thousand sessions) stops the loop for every session, is
  timed into :class:`GcPauses` and shows in the loop-lag and loop-stall figures;
* and :func:`freeze_baseline`, called once before a process's loop starts, collects and then
  *freezes* what is left (``gc.freeze()``): the modules, the workload and the configuration
  live for the whole run, and scanning them again at each pass was half its length (a process
  that has imported rtbench holds ~117,000 tracked objects: 199 ms for a full pass on this
  machine, 0.0 ms once frozen). Passes then scan only what the run itself made.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

FULL_EVERY_S = 300.0
CHECK_EVERY_S = 1.0
#: Net new tracked objects that make a timed pass worth its pause: far above what a steady
#: loop's count drifts by, far below what a leak into cycles reaches in 300 s.
MIN_GROWTH = 100_000


@dataclass
class GcPauses:
    """How often, and for how long, scheduled collection stopped the loop."""

    passes: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    collected: int = 0

    def add(self, seconds: float, collected: int) -> None:
        self.passes += 1
        self.total_s += seconds
        self.max_s = max(self.max_s, seconds)
        self.collected += collected

    def as_dict(self) -> dict[str, Any]:
        return {"passes": self.passes, "total_ms": self.total_s * 1000.0,
                "max_ms": self.max_s * 1000.0, "collected": self.collected}


class ScheduledGc:
    """``await run()`` in the loop's nursery, for as long as the loop is timed."""

    def __init__(self, *, full_every_s: float = FULL_EVERY_S,
                 idle: Callable[[], bool] | None = None, pauses: GcPauses | None = None,
                 on_pause: Callable[[float], None] | None = None,
                 check_every_s: float = CHECK_EVERY_S, min_growth: int = MIN_GROWTH) -> None:
        self.full_every_s = full_every_s
        self.min_growth = min_growth
        self.idle = idle
        self.on_pause = on_pause
        self.check_every_s = check_every_s
        self.pauses = GcPauses() if pauses is None else pauses

    async def run(self) -> None:
        was_enabled = gc.isenabled()
        gc.disable()
        last = trio.current_time()
        busy = False  # work was seen since the last pass
        try:
            while True:
                await trio.sleep(self.check_every_s)
                idle = self.idle is not None and self.idle()
                due = trio.current_time() - last >= self.full_every_s
                if (idle and busy) or (due and gc.get_count()[0] >= self.min_growth):
                    self.collect()
                    last, busy = trio.current_time(), False
                elif due:
                    last = trio.current_time()   # nothing worth a pause: look again later
                else:
                    busy = busy or not idle
        finally:
            if was_enabled:
                gc.enable()

    def collect(self) -> None:
        t0 = time.perf_counter()
        collected = gc.collect()
        seconds = time.perf_counter() - t0
        self.pauses.add(seconds, collected)
        if self.on_pause is not None:
            self.on_pause(seconds)


def freeze_baseline() -> None:
    """Collect once, then exclude every surviving object from later passes (see above). Call
    it before the timed loop starts: the pass it takes delays no session."""
    gc.collect()
    gc.freeze()


__all__ = ["FULL_EVERY_S", "MIN_GROWTH", "GcPauses", "ScheduledGc", "freeze_baseline"]
