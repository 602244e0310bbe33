"""One scripted client session: connect, configure, stream turns on a real-time schedule.

Audio leaves on an absolute schedule (chunk k at ``t0 + (k+1)·c``, like a microphone that can
only send audio once captured; a late chunk is sent at once and its lateness recorded, never
hidden): the process's shared :class:`~rtbench.client.pacer.Pacer` calls :meth:`ClientSession._send_due`
at each deadline (a session run alone gets a pacer of its own). The *reader* task stamps each
message with the clock before parsing it and feeds it to the sans-IO
:class:`~rtbench.protocol.conversation.Conversation`, which holds the conversation script (set-up,
turn attribution, error classification); this module acts on its actions with trio: it sends,
wakes the turn loop, records rows. The turn loop in between waits for each turn's response.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import trio

from ..config.scenario import Scenario, Target
from ..metrics.recorder import BUNCHED_CHUNKS, SEND_LATENESS, Recorder, turn_metrics
from ..metrics.records import ErrorRecord, SessionRecord, TurnRecord
from ..protocol.adapters import for_dialect
from ..protocol.conversation import (
    Action,
    Conversation,
    Ended,
    Failed,
    FirstAudio,
    ResponseEnded,
    Send,
    SessionCreated,
    SessionUpdated,
    Truncated,
    Turn,
    TurnEnded,
    failure,
)
from ..protocol.taxonomy import BENIGN, FATAL, RETRYABLE
from ..protocol.turn import TurnTracker
from ..ws.frame import OutFrame
from . import transport
from .pacer import Paced, Pacer, spread_phase
from .transport import CloseReason, Connect, ConnectionClosed, WsClient
from .workload import ChunkPlan


class SessionObserver(Protocol):
    """Live counters a session reports its connection state to (the progress display's
    ``live.progress.RunProgress``); declared here so the client never imports the layer above."""

    def session_connecting(self) -> None: ...

    def session_connected(self) -> None: ...

    def session_finished(self, target: str, connected: bool, turns_attempted: int,
                         turns_planned: int) -> None: ...


class Sink(Protocol):
    """Where a session delivers what it measured (the results store in a run)."""

    recorder: Recorder

    def turn(self, record: TurnRecord) -> None: ...

    def error(self, record: ErrorRecord) -> None: ...

    def session(self, record: SessionRecord) -> None: ...


#: How long a barged-in turn waits for ``conversation.item.truncated`` after its response ended.
TRUNCATE_CONFIRM_S = 1.0


class SessionEnded(Exception):
    """The session cannot go on (closed, refused, failed to configure); already recorded."""


@dataclass(slots=True)
class Chunk:
    """What the pacer sends at one deadline: the audio frame, then control frames if any."""

    frame: OutFrame
    on_sent: list[Callable[[float], None]]   # told the send-completion time of ``frame``
    then: tuple[OutFrame, ...] = ()           # sent right after (manual commit + response.create)
    on_then_sent: Callable[[float], None] | None = None


class AudioSource:
    """What the pacer sends next: the current utterance's chunks, then silence.

    ``marks`` maps a chunk index of the utterance to callbacks told when that chunk was sent:
    how T_eos (and the barge-in speech start) are stamped without the pacer knowing turns.
    """

    def __init__(self, silence: OutFrame) -> None:
        self.silence = silence
        self.plan: ChunkPlan | None = None
        self.marks: dict[int, list[Callable[[float], None]]] = {}
        self.then: tuple[OutFrame, ...] = ()
        self.on_then_sent: Callable[[float], None] | None = None
        self.control: list[OutFrame] = []  # one-off frames (truncate) sent after the next chunk
        self.index = 0

    def start(self, plan: ChunkPlan, marks: dict[int, list[Callable[[float], None]]],
              then: tuple[OutFrame, ...] = (),
              on_then_sent: Callable[[float], None] | None = None) -> None:
        self.plan, self.marks, self.index = plan, marks, 0
        self.then, self.on_then_sent = then, on_then_sent

    def next(self) -> Chunk:
        control, self.control = tuple(self.control), []
        plan = self.plan
        if plan is None:
            return Chunk(self.silence, [], control)
        chunk = Chunk(plan.wire[self.index], self.marks.get(self.index, []), control)
        self.index += 1
        if self.index == len(plan.wire):
            self.plan = None
            chunk.then = control + self.then
            chunk.on_then_sent = self.on_then_sent
        return chunk


@dataclass(slots=True)
class _Turn:
    """A turn in flight: the conversation's turn and the trio events the turn loop waits on."""

    idx: int
    plan: ChunkPlan
    state: Turn
    done: trio.Event = field(default_factory=trio.Event)
    first_audio: trio.Event = field(default_factory=trio.Event)
    truncated: trio.Event = field(default_factory=trio.Event)
    lateness_ms: float = 0.0

    @property
    def tracker(self) -> TurnTracker:
        return self.state.tracker


class ClientSession:
    def __init__(
        self,
        idx: int,
        target: Target,
        scenario: Scenario,
        plans: Sequence[ChunkPlan],
        silence_frame: str | OutFrame,
        sink: Sink,
        run_t0: float,
        attempt: int = 0,
        clock: Callable[[], float] = trio.current_time,
        stop_at: float | None = None,
        progress: SessionObserver | None = None,
        pacer: Pacer | None = None,
        connect: Connect = transport.open_connection,
    ) -> None:
        self.idx = idx
        self.connect = connect  # the transport seam: tests connect in memory on a mock clock
        self.attempt = attempt
        self.clock = clock
        self.target = target
        self.scenario = scenario
        self.session_config = scenario.session_for(target)  # the target's effort over the scenario's
        self.plans = plans
        self.sink = sink
        self.run_t0 = run_t0
        self.conversation = Conversation(for_dialect(target.dialect),
                                         audible_threshold=scenario.audible_threshold)
        self.source = AudioSource(silence_frame if isinstance(silence_frame, OutFrame)
                                  else OutFrame(silence_frame))
        self.pacer = pacer  # None: run() paces this session with a pacer of its own
        self._paced: Paced | None = None
        self._lateness = sink.recorder.series(target.name, SEND_LATENESS)
        self.active: list[_Turn] = []   # turns in flight (two while a barge-in overlaps)
        self.turn_idx: int | None = None
        self.connect_ms: float | None = None
        self.session_created_ms: float | None = None
        self._session_created = trio.Event()
        self._session_updated = trio.Event()
        self._t_connect = 0.0
        self.fatal: str | None = None  # the code of a fatal error, if one ended the session
        self.stop_at = stop_at  # no turn starts at or after this time (duration-bounded runs)
        self.turns_ok = 0
        self.turns_failed = 0
        self.end_code: str | None = None  # first non-benign error
        self.end_severity: str | None = None
        self.progress = progress

    # -- recording -------------------------------------------------------------------------

    def _error(self, row: Failed) -> None:
        severity, code = row.severity, row.code
        if severity == "fatal" and self.fatal is None:
            self.fatal = code
        if severity != BENIGN and self.end_code is None:
            self.end_code, self.end_severity = code or row.kind, severity
        self.sink.error(
            ErrorRecord(
                target=self.target.name, region=self.target.region, model=self.target.model,
                session_idx=self.idx, session_id=self.conversation.session_id,
                turn_idx=self.turn_idx if row.phase == "turn" else None, phase=row.phase,
                kind=row.kind, code=code, message=row.message[:500],
                t_s=self.clock() - self.run_t0, severity=severity, attempt=self.attempt,
            )
        )

    @property
    def unknown_events(self) -> dict[str, int]:
        """Server event types unknown to rtbench, with how often each came."""
        return self.conversation.unknown_events

    def _act(self, actions: Sequence[Action]) -> None:
        """Carry out the conversation's actions, in order."""
        for action in actions:
            _ACTIONS[type(action)](self, action)

    def _on_session_created(self, action: SessionCreated) -> None:
        self.session_created_ms = (action.t - self._t_connect) * 1000.0
        self.sink.recorder.record_ms(self.target.name, "session_created_ms",
                                     self.session_created_ms)
        self._session_created.set()

    def _on_session_updated(self, action: SessionUpdated) -> None:
        self._session_updated.set()

    def _on_send(self, action: Send) -> None:
        self.source.control.append(OutFrame(action.wire))  # goes out after the next chunk

    def _on_first_audio(self, action: FirstAudio) -> None:
        turn = self._active(action.turn)
        if turn is not None:
            turn.first_audio.set()

    def _on_response_ended(self, action: ResponseEnded) -> None:
        turn = self._active(action.turn)
        if turn is not None:
            turn.done.set()

    def _on_truncated(self, action: Truncated) -> None:
        turn = self._active(action.turn)
        if turn is not None:
            turn.truncated.set()

    def _on_ended(self, action: Ended) -> None:
        """Wake every waiter: the conversation cannot go on."""
        self._session_created.set()
        self._session_updated.set()
        for turn in self.active:
            turn.done.set()

    def _on_turn_ended(self, action: TurnEnded) -> None:
        rec = action.record
        turn = self._active(rec.turn_idx)
        if turn is not None:
            rec.send_lateness_max_ms = turn.lateness_ms
            self.active.remove(turn)
        self._record_turn(rec)

    def _active(self, idx: int) -> _Turn | None:
        for turn in self.active:
            if turn.idx == idx:
                return turn
        return None

    # -- main ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the whole session; every failure is recorded, none escapes."""
        sc = self.scenario
        t_c0 = self._t_connect = trio.current_time()
        if self.progress is not None:
            self.progress.session_connecting()
        try:
            await self._run(sc, t_c0)
        finally:
            if self.progress is not None:
                self.progress.session_finished(self.target.name, self.connect_ms is not None,
                                               self.turns_ok + self.turns_failed,
                                               sc.turns_per_session)

    async def _run(self, sc: Scenario, t_c0: float) -> None:
        try:
            async with self.connect(self.target, sc.connect_timeout_s) as ws:
                self.connect_ms = (trio.current_time() - t_c0) * 1000.0
                if self.progress is not None:
                    self.progress.session_connected()
                self.sink.recorder.record_ms(self.target.name, "connect_ms", self.connect_ms)
                async with trio.open_nursery() as nursery:
                    try:
                        nursery.start_soon(self._reader, ws)
                        await self._configure(ws)
                        pacer = self.pacer
                        if pacer is None:
                            pacer = Pacer()
                            nursery.start_soon(pacer.run)
                        self._paced = pacer.add(lambda deadline: self._send_due(ws, deadline),
                                                sc.chunk_ms / 1000.0, phase=spread_phase(self.idx))
                        handed: _Turn | None = None
                        for turn_idx in range(sc.turns_per_session):
                            if self.stop_at is not None and trio.current_time() >= self.stop_at:
                                break
                            handed = await self._turn(turn_idx, handed)
                    except SessionEnded:
                        pass
                    finally:
                        if self._paced is not None:
                            self._paced.stop()
                    self.conversation.finish()  # our own close is not an error
                    nursery.cancel_scope.cancel()
        except transport.HandshakeFailed as exc:
            kind = "http_status" if exc.status else (
                "timeout" if exc.code == "connect_timeout" else "connect")
            code = exc.code or (str(exc.status) if exc.status else None)
            self._error(failure("connect", kind, code, str(exc)))

    async def _configure(self, ws: WsClient) -> None:
        sc = self.scenario
        with trio.move_on_after(sc.connect_timeout_s):
            await self._session_created.wait()
        self._check_alive()
        try:
            ws.send_text(self.conversation.configure(self.session_config).wire)
        except ConnectionClosed as exc:
            self._closed(exc.reason)
            raise SessionEnded from None
        with trio.move_on_after(sc.connect_timeout_s):
            await self._session_updated.wait()
        self._check_alive()

    def _check_alive(self) -> None:
        """After a bounded wait: go on, or end the session (recording a set-up timeout)."""
        if self.conversation.ended is not None:
            raise SessionEnded
        if self.conversation.awaiting is not None:
            self._act(self.conversation.setup_timed_out(self.scenario.connect_timeout_s))
            raise SessionEnded

    def begin_turn(self, turn_idx: int, interrupting: _Turn | None = None) -> _Turn:
        """Start streaming the turn's utterance; ``interrupting``: the turn it barges into."""
        sc = self.scenario
        plan = self.plans[(self.idx + turn_idx) % len(self.plans)]
        record = TurnRecord(
            target=self.target.name, region=self.target.region, model=self.target.model,
            session_idx=self.idx, session_id=self.conversation.session_id, turn_idx=turn_idx,
            utterance=plan.utterance.name, t_start_s=self.clock() - self.run_t0,
            chunk_ms=sc.chunk_ms, speech_end_ms=plan.utterance.speech_end_ms,
            connect_ms=self.connect_ms, session_created_ms=self.session_created_ms,
            turn_mode=sc.turn_mode, effort=self.session_config.reasoning_effort,
        )
        conv = self.conversation
        turn = _Turn(turn_idx, plan, conv.begin_turn(record, manual=sc.turn_mode == "manual",
                                                     spoken=True))
        marks: dict[int, list[Callable[[float], None]]] = {
            plan.eos_chunk: [partial(conv.eos_sent, turn_idx)]}
        if interrupting is not None:
            marks.setdefault(plan.speech_start_chunk, []).append(
                partial(conv.barge_sent, interrupting.idx))
        then = tuple(OutFrame(send.wire) for send in turn.state.sends)
        self.source.start(plan, marks, then, partial(conv.commit_sent, turn_idx) if then else None)
        self.active.append(turn)
        self.turn_idx = turn_idx
        return turn

    async def _turn(self, turn_idx: int, handed: _Turn | None) -> _Turn | None:
        """Run one turn to its ``response.done``; return the next turn if it already began."""
        sc = self.scenario
        conv = self.conversation
        if conv.ended is not None:
            raise SessionEnded
        turn = handed if handed is not None else self.begin_turn(turn_idx)
        tracker = turn.tracker
        barging: _Turn | None = None
        with trio.move_on_after(sc.turn_timeout_s) as scope:
            if (sc.barge_in_after_ms is not None and sc.turn_mode != "manual"
                    and turn_idx + 1 < sc.turns_per_session):
                await turn.first_audio.wait()
                await trio.sleep(sc.barge_in_after_ms / 1000.0)
                if not turn.done.is_set() and conv.ended is None:
                    barging = self.begin_turn(turn_idx + 1, interrupting=turn)
            await turn.done.wait()
            if tracker.record.truncate_audio_end_ms is not None:
                with trio.move_on_after(TRUNCATE_CONFIRM_S):
                    await turn.truncated.wait()  # conversation.item.truncated follows the cancel
        self._act(conv.end_turn(
            turn_idx, timed_out_after_s=sc.turn_timeout_s if scope.cancelled_caught else None))
        if conv.ended is not None:
            raise SessionEnded
        if barging is not None:
            return barging  # the user is already speaking: no think time
        # Keep the line open like a microphone: trailing silence after speech, then think time.
        t_eos = tracker.t_eos if tracker.t_eos is not None else trio.current_time()
        if tracker.t_eos is None and self.source.plan is turn.plan:
            # ended before the user finished (an early answer, an error): the utterance is
            # still being sent; the next one starts only after it, as a person would
            t_eos += max(0, turn.plan.eos_chunk + 1 - self.source.index) * sc.chunk_ms / 1000.0
        resume = max(trio.current_time() + sc.think_time_ms / 1000.0,
                     t_eos + sc.trailing_silence_ms / 1000.0)
        await trio.sleep_until(resume)
        return None

    def record(self, slot: int, intended_start_s: float, start_s: float) -> SessionRecord:
        """This attempt as a sessions-table row (times relative to the run start)."""
        return SessionRecord(
            target=self.target.name, region=self.target.region, model=self.target.model,
            session_idx=self.idx, slot=slot, attempt=self.attempt,
            session_id=self.conversation.session_id, intended_start_s=intended_start_s,
            start_s=start_s, start_lag_ms=(start_s - intended_start_s) * 1000.0,
            connect_ms=self.connect_ms, session_created_ms=self.session_created_ms,
            turns_ok=self.turns_ok, turns_failed=self.turns_failed,
            status="failed" if self.end_code is not None else "ok",
            end_code=self.end_code, severity=self.end_severity,
        )

    def crashed(self, exc: Exception) -> None:
        """An exception rtbench did not expect ended this session: a ``crash`` row naming its
        type, so the run goes on for every other session and says it is incomplete."""
        phase = "turn" if self.turn_idx is not None else (
            "session" if self.connect_ms is not None else "connect")
        self._error(Failed(phase, "crash", type(exc).__name__, FATAL,
                           f"{type(exc).__name__}: {exc}"))

    def retryable_failure(self) -> bool:
        """Failed retryably before completing any turn (connect, handshake, set-up)."""
        return self.end_severity == RETRYABLE and self.turns_ok == 0

    def _record_turn(self, rec: TurnRecord) -> None:
        if rec.status == "ok":
            self.turns_ok += 1
        else:
            self.turns_failed += 1
        if rec.status == "ok":
            rec_ms = self.sink.recorder.record_ms
            for metric in turn_metrics(barge_in=rec.barge_in, premature=rec.premature):
                rec_ms(self.target.name, metric, getattr(rec, metric))
        self.sink.turn(rec)

    # -- tasks -----------------------------------------------------------------------------

    def _send_due(self, ws: WsClient, deadline: float) -> bool:
        """Called by the pacer at each chunk deadline: send the chunk (and its control frames).

        Lateness is measured at send completion against the chunk's absolute deadline; a
        chunk sent more than a whole chunk late was bunched with its predecessor and is
        counted as such. Returns False when the session wants no more ticks.
        """
        if self.conversation.ended is not None:
            return False
        chunk = self.source.next()
        try:
            ws.send_frame(chunk.frame, lambda t: self._chunk_sent(chunk, deadline, t))
            last = len(chunk.then) - 1
            for i, extra in enumerate(chunk.then):
                ws.send_frame(extra, chunk.on_then_sent if i == last else None)
        except ConnectionClosed as exc:
            self._closed(exc.reason)
            return False
        return True

    def _chunk_sent(self, chunk: Chunk, deadline: float, t_sent: float) -> None:
        late_ms = (t_sent - deadline) * 1000.0
        self._lateness.record_ms(late_ms)
        if late_ms > self.scenario.chunk_ms:  # sent back to back with its predecessor: say so
            self.sink.recorder.count(BUNCHED_CHUNKS)
        for turn in self.active:
            turn.lateness_ms = max(turn.lateness_ms, late_ms)
        for mark in chunk.on_sent:
            mark(t_sent)

    async def _reader(self, ws: WsClient) -> None:
        self._closed(await ws.receive_into(self.handle_frame))  # stamps before parsing

    def handle_frame(self, frame: str | bytes, t: float) -> bool:
        """Feed one server message received at ``t`` to the conversation and act on it.

        Returns False when the frame was not a usable event: a malformed one is recorded as a
        protocol error, an unknown event type is counted (first of each type recorded as
        benign). Never raises for anything a server can send.
        """
        used = self.conversation.receive_frame(frame, t)
        self._act(self.conversation.next_actions())
        return used

    def _closed(self, reason: CloseReason) -> None:
        self._act(self.conversation.closed(str(reason.code), reason.reason or reason.name))


#: Action type -> what the session does with it (a table, as the conversation's own handlers).
_ACTIONS: dict[type, Callable[[ClientSession, Any], None]] = {
    SessionCreated: ClientSession._on_session_created,
    SessionUpdated: ClientSession._on_session_updated,
    Send: ClientSession._on_send,
    Failed: ClientSession._error,
    FirstAudio: ClientSession._on_first_audio,
    ResponseEnded: ClientSession._on_response_ended,
    Truncated: ClientSession._on_truncated,
    Ended: ClientSession._on_ended,
    TurnEnded: ClientSession._on_turn_ended,
}
