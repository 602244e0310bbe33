"""Drive sessions in one trio nursery according to the load model; watch the generator itself.

Targets are assigned per slot (closed model) or per arrival (open model), round-robin or in a
seeded random order with equal shares, so drift over time hits every target alike. A monitor
task measures event-loop lag continuously: if the loop cannot wake on time, chunk sends are
late too and the run says so instead of reporting bent numbers. Every session attempt becomes
a :class:`SessionRecord` with its intended and actual start, so late starts (coordinated
omission) and dropped arrivals are visible.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from ..config.scenario import Scenario, Target
from ..metrics.recorder import GC_PAUSE, GENERATOR, LOOP_LAG, Recorder
from ..metrics.records import SessionRecord
from ..process.gcpolicy import ScheduledGc
from ..ws.frame import OutFrame
from . import transport
from .loadmodel import LoadModel, backoff_s, closed_start_offsets, open_arrival_offsets
from .pacer import Pacer
from .session import ClientSession, SessionObserver, Sink
from .shard import Shard
from .transport import Connect
from .workload import ChunkPlan, silence_frame

LAG_PROBE_S = 0.010
DROPPED = "dropped_arrivals"

INTERLEAVE = ("rr", "random")


def assign_targets(sessions: int, n_targets: int, interleave: str = "rr", seed: int = 0) -> list[int]:
    """Target index of each session: ``rr`` cycles 0,1,..; ``random`` shuffles the same shares."""
    order = [i % n_targets for i in range(sessions)]
    if interleave == "random":
        random.Random(seed).shuffle(order)
    elif interleave != "rr":
        raise ValueError(f"interleave must be one of {INTERLEAVE}, got {interleave!r}")
    return order

#: A task started beside the sessions (progress display, interval log, abort-on-fail); it may
#: cancel the run through the scope it is given, and is cancelled when the sessions are done.
Monitor = Callable[[trio.CancelScope], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunPlan:
    scenario: Scenario
    targets: Sequence[Target]
    sessions: int
    load: LoadModel | None = None
    interleave: str = "rr"
    seed: int = 0
    shard: Shard = field(default_factory=Shard)  # the part of the run this process drives (see shard.py)
    _order: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = assign_targets(self.sessions, len(self.targets), self.interleave, self.seed)
        object.__setattr__(self, "_order", tuple(order))

    @property
    def model(self) -> LoadModel:
        return self.load if self.load is not None else LoadModel(sessions=self.sessions)

    def target_of(self, slot: int) -> Target:
        """The target of a closed-model slot or an open-model arrival number."""
        return self.targets[self._order[slot % len(self._order)]]

    def sessions_per_target(self) -> dict[str, int]:
        """Closed-model slots per target (the concurrency each target sees)."""
        counts = {t.name: 0 for t in self.targets}
        for i in range(self.model.sessions):
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


class _Runner:
    def __init__(self, plan: RunPlan, plans: Sequence[ChunkPlan], sink: Sink,
                 progress: SessionObserver | None, pacer: Pacer, connect: Connect) -> None:
        self.plan = plan
        self.connect = connect
        self.progress = progress
        self.model = plan.model
        self.plans = plans
        self.sink = sink
        self.pacer = pacer
        self.silence = OutFrame(silence_frame(plan.scenario.chunk_ms))
        self.rng = random.Random(self.model.seed)
        self.t0 = trio.current_time()
        self.next_idx = 0
        self.in_flight = 0

    async def run(self) -> None:
        model = self.model
        stop_at = None if model.duration_s is None else self.t0 + model.duration_s
        async with trio.open_nursery() as nursery:
            if model.kind == "closed":
                for slot, offset in enumerate(closed_start_offsets(model)):
                    if self.plan.shard.owns(slot):
                        nursery.start_soon(self._slot, slot, self.t0 + offset, stop_at)
            else:
                nursery.start_soon(self._arrivals, nursery)

    async def _slot(self, slot: int, start: float, stop_at: float | None) -> None:
        """A closed-model slot: sessions back to back until the duration ends (or just one)."""
        await trio.sleep_until(start)
        intended = start
        while True:
            await self._attempts(slot, intended, stop_at)
            intended = trio.current_time()
            if stop_at is None or intended >= stop_at:
                return

    async def _arrivals(self, nursery: trio.Nursery) -> None:
        cap = self.plan.shard.share(self.model.sessions)
        for k, offset in enumerate(open_arrival_offsets(self.model)):
            if not self.plan.shard.owns(k):
                continue
            intended = self.t0 + offset
            await trio.sleep_until(intended)
            if self.in_flight >= cap:
                self._dropped(k, intended)
                continue
            nursery.start_soon(self._attempts, k, intended, None)

    def _dropped(self, k: int, intended: float) -> None:
        target = self.plan.target_of(k)
        self.sink.recorder.count(DROPPED)
        self.sink.session(SessionRecord(
            target=target.name, region=target.region, model=target.model, session_idx=-1,
            slot=k, attempt=0, session_id=None, intended_start_s=intended - self.t0,
            start_s=None, start_lag_ms=None, connect_ms=None, session_created_ms=None,
            status="dropped", end_code="concurrency_cap"))

    async def _attempts(self, slot: int, intended: float, stop_at: float | None) -> None:
        """One session, retried (only when asked) if it failed retryably before any turn."""
        self.in_flight += 1
        try:
            for attempt in range(self.model.retries + 1):
                idx = self.plan.shard.session_idx(self.next_idx)
                self.next_idx += 1
                session = ClientSession(idx, self.plan.target_of(slot), self.plan.scenario,
                                        self.plans, self.silence, self.sink, self.t0,
                                        attempt=attempt, stop_at=stop_at,
                                        progress=self.progress, pacer=self.pacer,
                                        connect=self.connect)
                start = trio.current_time()
                try:
                    await session.run()
                except Exception as exc:
                    session.crashed(exc)
                except trio.Cancelled:
                    # The run is stopping (signal, abort, disk full): the session still gets its
                    # row, marked stopped, so its unplayed turns count as not run, not failed.
                    record = session.record(slot, intended - self.t0, start - self.t0)
                    if record.status == "ok":
                        record.status = "stopped"
                    self.sink.session(record)
                    raise
                record = session.record(slot, intended - self.t0, start - self.t0)
                record.retried = attempt < self.model.retries and session.retryable_failure()
                self.sink.session(record)
                if not record.retried:
                    return
                await trio.sleep(backoff_s(self.model, attempt + 1, self.rng))
                intended = trio.current_time()
        finally:
            self.in_flight -= 1


async def run_sessions(plan: RunPlan, plans: Sequence[ChunkPlan], sink: Sink,
                       progress: SessionObserver | None = None,
                       monitors: Sequence[Monitor] = (),
                       connect: Connect = transport.open_connection) -> None:
    """Run the plan's load model to the end (or until a monitor cancels); results go to
    ``sink``, each session's connection state to ``progress`` (rows reach live counters through
    the sink: see ``live.progress.ProgressSink``). Every session opens its WebSocket with
    ``connect`` (a parameter, not part of the picklable :class:`RunPlan` shipped to workers).

    One :class:`Pacer` task sends the audio of every session (see pacer.py for why), and
    garbage is collected on a schedule, not whenever the allocator decides (gcpolicy.py).
    """
    pacer = Pacer()
    recorder = sink.recorder
    async with trio.open_nursery() as outer:
        outer.start_soon(_monitor_loop_lag, recorder)
        outer.start_soon(ScheduledGc(
            on_pause=lambda s: recorder.record_ms(GENERATOR, GC_PAUSE, s * 1000.0)).run)
        outer.start_soon(pacer.run)
        for monitor in monitors:
            outer.start_soon(monitor, outer.cancel_scope)
        await _Runner(plan, plans, sink, progress, pacer, connect).run()
        outer.cancel_scope.cancel()
