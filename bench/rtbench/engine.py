"""Run N sessions concurrently in one trio nursery and watch the generator itself.

Sessions are interleaved across targets, round-robin or in a seeded random order with equal
shares (so drift over time hits every target alike). A monitor task measures event-loop lag
continuously: if the loop cannot wake on time, chunk sends are late too and the run says so
instead of reporting bent numbers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from .config import Scenario, Target
from .metrics import Recorder
from .session import ClientSession, Sink
from .workload import ChunkPlan, silence_frame

GENERATOR = "_generator"     # pseudo-target under which the generator's own health is recorded
LOOP_LAG = "loop_lag_ms"
LAG_PROBE_S = 0.010
INTERLEAVE = ("rr", "random")


def assign_targets(sessions: int, n_targets: int, interleave: str = "rr", seed: int = 0) -> list[int]:
    """Target index of each session: ``rr`` cycles 0,1,..; ``random`` shuffles the same shares."""
    order = [i % n_targets for i in range(sessions)]
    if interleave == "random":
        random.Random(seed).shuffle(order)
    elif interleave != "rr":
        raise ValueError(f"interleave must be one of {INTERLEAVE}, got {interleave!r}")
    return order


@dataclass(frozen=True, slots=True)
class RunPlan:
    scenario: Scenario
    targets: Sequence[Target]
    sessions: int
    interleave: str = "rr"
    seed: int = 0
    _order: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = assign_targets(self.sessions, len(self.targets), self.interleave, self.seed)
        object.__setattr__(self, "_order", tuple(order))

    def target_of(self, session_idx: int) -> Target:
        return self.targets[self._order[session_idx]]

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


async def run_sessions(plan: RunPlan, plans: Sequence[ChunkPlan], sink: Sink) -> None:
    """Run every session of ``plan`` to the end; results go to ``sink``."""
    sc = plan.scenario
    silence = silence_frame(sc.chunk_ms)
    run_t0 = trio.current_time()
    async with trio.open_nursery() as outer:
        outer.start_soon(_monitor_loop_lag, sink.recorder)
        async with trio.open_nursery() as nursery:
            for i in range(plan.sessions):
                session = ClientSession(i, plan.target_of(i), sc, plans, silence, sink, run_t0)
                nursery.start_soon(session.run)
        outer.cancel_scope.cancel()

