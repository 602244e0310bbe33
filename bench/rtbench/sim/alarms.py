"""Many tasks asleep until their own deadlines, woken by one timer task instead of one each.

Why: in trio every timed sleep is a cancel scope with a deadline, and waking at the deadline
means cancelling that scope: registering it, expiring it, delivering and catching a
``Cancelled``, recalculating cancel status. The simulator sleeps a task per session until its
next output is due, thousands of times a second; profiled at 1,400 sessions × 100 ms, that
machinery was about a tenth of its core. Here a sleeper parks its task, one :class:`Alarms`
task sleeps until the earliest deadline of all and reschedules every sleeper that is due, and
anyone may wake a sleeper early (:meth:`Sleeper.wake_by`) with a plain reschedule.
"""

from __future__ import annotations

import heapq
import itertools
import math

import trio

_PRUNE_MIN = 4096


class Alarms:
    """``await run()`` once in a nursery; then make :class:`Sleeper` objects on it."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Sleeper, int]] = []
        self._prune_at = _PRUNE_MIN
        self._seq = itertools.count()
        self._timer: trio.lowlevel.Task | None = None  # the run() task, while it is parked
        self._timer_until = math.inf

    def _add(self, deadline: float, sleeper: Sleeper, token: int) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), sleeper, token))
        if len(self._heap) > self._prune_at:
            self._prune()
        if deadline < self._timer_until and self._timer is not None:
            trio.lowlevel.reschedule(self._timer)  # it sleeps too long now: re-aim it
            self._timer = None

    def _prune(self) -> None:
        """Drop the entries of sleepers woken early (one per early wake, each due perhaps
        minutes later, e.g. at session expiry), so the heap tracks the live sleepers."""
        self._heap = [e for e in self._heap if e[2]._task is not None and e[3] == e[2]._token]
        heapq.heapify(self._heap)
        self._prune_at = max(_PRUNE_MIN, 2 * len(self._heap))

    async def run(self) -> None:
        while True:
            heap = self._heap
            until = heap[0][0] if heap else math.inf
            self._timer_until = until
            self._timer = trio.lowlevel.current_task()

            def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
                self._timer = None
                return trio.lowlevel.Abort.SUCCEEDED

            with trio.move_on_at(until):
                await trio.lowlevel.wait_task_rescheduled(abort)
            self._timer, self._timer_until = None, -math.inf
            heap = self._heap  # (a prune may have replaced it meanwhile)
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, _, sleeper, token = heapq.heappop(heap)
                sleeper._ring(token)


class Sleeper:
    """One task's sleep: until a deadline, or until someone needs it awake sooner.

    A task that is not asleep is taken to look at its schedule before it next sleeps, so waking
    it is then a no-op (as with the simulator's sender, which has no checkpoint between reading
    its next due time and sleeping until it).
    """

    __slots__ = ("_alarms", "_task", "_token", "_until")

    def __init__(self, alarms: Alarms) -> None:
        self._alarms = alarms
        self._task: trio.lowlevel.Task | None = None
        self._token = 0  # which of this sleeper's heap entries is current
        self._until = math.inf

    def wake_by(self, due: float | None) -> None:
        """Make sure the sleeper is awake by ``due`` (now, if it sleeps until later)."""
        if due is not None and self._task is not None and due < self._until:
            self._ring(self._token)

    def _ring(self, token: int) -> None:
        if self._task is not None and token == self._token:
            task, self._task = self._task, None
            trio.lowlevel.reschedule(task)

    async def sleep_until(self, deadline: float | None) -> None:
        """Sleep until ``deadline`` (None: until woken)."""
        self._token += 1
        self._until = math.inf if deadline is None else deadline
        self._task = trio.lowlevel.current_task()
        if deadline is not None:
            self._alarms._add(deadline, self, self._token)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


__all__ = ["Alarms", "Sleeper"]
