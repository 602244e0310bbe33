"""Run N sessions concurrently in one trio nursery and watch the generator itself.

Sessions are assigned to targets round-robin (so drift over time hits every target alike). A
monitor task measures event-loop lag continuously: if the loop cannot wake on time, chunk
sends are late too and the run says so instead of reporting bent numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from .config import Scenario, Target
from .metrics import Recorder
from .session import ClientSession, Sink
from .workload import ChunkPlan, silence_frame

GENERATOR = "_generator"     # pseudo-target under which the generator's own health is recorded
LOOP_LAG = "loop_lag_ms"
LAG_PROBE_S = 0.010

if TYPE_CHECKING:
    from .progress import RunProgress

#: A task started beside the sessions (progress display, interval log, abort-on-fail); it may
#: cancel the run through the scope it is given, and is cancelled when the sessions are done.
Monitor = Callable[[trio.CancelScope], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunPlan:
    scenario: Scenario
    targets: Sequence[Target]
    sessions: int

    def target_of(self, session_idx: int) -> Target:
        return self.targets[session_idx % len(self.targets)]

    def sessions_per_target(self) -> dict[str, int]:
        counts = {t.name: 0 for t in self.targets}
        for i in range(self.sessions):
            counts[self.target_of(i).name] += 1
        return counts


async def _monitor_loop_lag(recorder: Recorder) -> None:
    series = recorder.series(GENERATOR, LOOP_LAG)
    deadline = trio.current_time()
    while True:
        deadline += LAG_PROBE_S
        await trio.sleep_until(deadline)
        now = trio.current_time()
        series.record_ms((now - deadline) * 1000.0)
        deadline = max(deadline, now)


async def run_sessions(plan: RunPlan, plans: Sequence[ChunkPlan], sink: Sink,
                       progress: RunProgress | None = None, monitors: Sequence[Monitor] = ()) -> None:
    """Run every session of ``plan`` to the end (or until a monitor cancels); results go to
    ``sink``, live counts to ``progress``."""
    sc = plan.scenario
    silence = silence_frame(sc.chunk_ms)
    run_t0 = trio.current_time()
    if progress is not None:
        from .progress import ProgressSink
        sink = ProgressSink(sink, progress)
    async with trio.open_nursery() as outer:
        outer.start_soon(_monitor_loop_lag, sink.recorder)
        for monitor in monitors:
            outer.start_soon(monitor, outer.cancel_scope)
        async with trio.open_nursery() as nursery:
            for i in range(plan.sessions):
                session = ClientSession(i, plan.target_of(i), sc, plans, silence, sink, run_t0,
                                        progress)
                nursery.start_soon(session.run)
        outer.cancel_scope.cancel()

