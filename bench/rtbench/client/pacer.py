"""One task paces the audio of every session in the process, on each session's absolute schedule.

Why: a task per session that sleeps once per chunk costs a timer, a wakeup and a context switch
per chunk per session — at 20 ms chunks that is 50 wakeups a second per session, which is what
capped a core at ~100 sessions. Here every session's next deadline sits in one heap; the pacer
sleeps until the earliest, then serves every session that is due in one go (a tick), each with
a plain synchronous call. Sessions that started at different times keep their own phase.

What stays exactly as it was with a pacer per session:

* chunk k of a stream is due at ``t0 + (k+1)·c`` (computed, never accumulated, so no drift);
  nothing is sent before its deadline (a microphone cannot send audio not yet captured);
* a chunk whose deadline has passed is sent at once, and the stream is told its deadline so it
  can record how late it left; a stream that fell several chunks behind gets all of them in
  the same tick, back to back, each with its own (large) lateness — never dropped or merged.

Streams started together (a closed run opens every session at once) would otherwise all fall due
in the same instant of every period, so the generator and the server would each serve them in
one burst, and the last of a burst would be stamped a burst-length late on both sides. Real
microphones of different users have unrelated phases; :func:`spread_phase` gives the i-th
stream a phase of its own (a low-discrepancy sequence, even for any number of streams) and
``add(..., phase=...)`` starts its schedule at the next instant of that phase, at most one
period later.

The pacer knows nothing about audio or sockets: a stream is a callable ``tick(deadline)``
that sends what is due and returns False when it wants no more ticks.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable

import trio

Tick = Callable[[float], bool]

#: Serve at most this many chunks before letting other tasks (readers) run...
BATCH = 64
#: ...and no longer than this at a time (checked after every chunk): one step of the pacer is
#: a stall for every reader waiting behind it, and a chunk costs 20-60 µs depending on the CPU.
SLICE_S = 0.0005

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def spread_phase(i: int) -> float:
    """Phase (fraction of a period) for stream ``i``: consecutive streams land far apart and
    any N of them cover the period nearly evenly (golden-ratio sequence)."""
    return (i * _GOLDEN) % 1.0


class Paced:
    """A stream registered with a :class:`Pacer`; ``stop()`` ends its ticks."""

    __slots__ = ("k", "period_s", "stopped", "t0", "tick")

    def __init__(self, tick: Tick, t0: float, period_s: float) -> None:
        self.tick = tick
        self.t0 = t0
        self.period_s = period_s
        self.k = 0            # index of the next chunk
        self.stopped = False

    def deadline(self) -> float:
        return self.t0 + (self.k + 1) * self.period_s

    def stop(self) -> None:
        self.stopped = True
        self.tick = _stopped  # drop the stream's callback (and what it holds) at once


def _stopped(deadline: float) -> bool:
    return False


class Pacer:
    """A heap of absolute deadlines served by :meth:`run` (one task for the whole process)."""

    def __init__(self, clock: Callable[[], float] = trio.current_time) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Paced]] = []
        self._seq = itertools.count()
        self._sleep: trio.CancelScope | None = None
        self.more_due = False

    def add(self, tick: Tick, period_s: float, t0: float | None = None,
            phase: float | None = None) -> Paced:
        """Pace ``tick`` every ``period_s`` from ``t0`` (default now): first call at t0 + period.

        With ``phase`` (a fraction of the period), t0 moves forward to the next instant that is
        ``phase`` periods past a multiple of the period on the pacer's clock.
        """
        if t0 is None:
            t0 = self.clock()
        if phase is not None:
            t0 += (phase * period_s - t0) % period_s
        paced = Paced(tick, t0, period_s)
        self._push(paced)
        return paced

    def _push(self, paced: Paced) -> None:
        deadline = paced.deadline()
        heapq.heappush(self._heap, (deadline, next(self._seq), paced))
        if self._sleep is not None and deadline < self._sleep.deadline:
            self._sleep.deadline = deadline  # wake earlier for the newcomer

    def serve_due(self) -> int:
        """Call the streams whose deadline has passed (catching up chunk by chunk), as many as
        one slice allows; ``more_due`` says whether it stopped with some still due."""
        heap, clock = self._heap, self.clock
        served = 0
        self.more_due = False
        started = time.perf_counter()
        while heap and heap[0][0] <= clock():
            deadline, _, paced = heapq.heappop(heap)
            if paced.stopped:
                continue
            served += 1
            if paced.tick(deadline) and not paced.stopped:
                paced.k += 1
                heapq.heappush(heap, (paced.deadline(), next(self._seq), paced))
            if served >= BATCH or time.perf_counter() - started >= SLICE_S:
                self.more_due = True    # the caller yields, then serves again
                break
        return served

    async def run(self) -> None:
        """Serve deadlines forever (cancel to stop)."""
        while True:
            self.serve_due()
            if self.more_due:
                await trio.lowlevel.checkpoint()
                continue
            with trio.CancelScope(deadline=self._heap[0][0] if self._heap else math.inf) as scope:
                self._sleep = scope
                await trio.sleep_forever()
            self._sleep = None
