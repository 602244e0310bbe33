"""One scripted client session: connect, configure, stream turns on a real-time schedule.

Two tasks per session: the *pacer* sends one chunk per ``chunk_ms`` on an absolute schedule
(chunk k at ``t0 + (k+1)·c``, like a microphone that can only send audio once captured; a late
chunk is sent at once and its lateness recorded, never hidden), and the *reader* stamps each
message with the clock before parsing it and hands it to the protocol connection and the turn
tracker. The turn loop in between waits for each turn's ``response.done``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import trio
import trio_websocket

from . import transport
from .config import Scenario, Target
from .metrics import SEND_LATENESS, Recorder
from .protocol import (
    Connection,
    ErrorInfo,
    Event,
    EventType,
    ProtocolViolation,
    Role,
    session_to_wire,
)
from .records import ErrorRecord, TurnRecord
from .turn import TurnTracker
from .workload import ChunkPlan


class Sink(Protocol):
    """Where a session delivers what it measured (the results store in a run)."""

    recorder: Recorder

    def turn(self, record: TurnRecord) -> None: ...

    def error(self, record: ErrorRecord) -> None: ...


class SessionEnded(Exception):
    """The session cannot go on (closed, refused, failed to configure); already recorded."""


class AudioSource:
    """What the pacer sends next: the current utterance's chunks, then silence."""

    def __init__(self, silence: str) -> None:
        self.silence = silence
        self.plan: ChunkPlan | None = None
        self.tracker: TurnTracker | None = None
        self.index = 0

    def start(self, plan: ChunkPlan, tracker: TurnTracker) -> None:
        self.plan, self.tracker, self.index = plan, tracker, 0

    def next(self) -> tuple[str, TurnTracker | None]:
        """The next frame, and the tracker to tell if this frame holds the end of speech."""
        plan = self.plan
        if plan is None:
            return self.silence, None
        frame = plan.frames[self.index]
        eos = self.tracker if self.index == plan.eos_chunk else None
        self.index += 1
        if self.index == len(plan.frames):
            self.plan = None
        return frame, eos


class ClientSession:
    def __init__(
        self,
        idx: int,
        target: Target,
        scenario: Scenario,
        plans: Sequence[ChunkPlan],
        silence_frame: str,
        sink: Sink,
        run_t0: float,
    ) -> None:
        self.idx = idx
        self.target = target
        self.scenario = scenario
        self.plans = plans
        self.sink = sink
        self.run_t0 = run_t0
        self.conn = Connection(Role.CLIENT, target.dialect)
        self.source = AudioSource(silence_frame)
        self.tracker: TurnTracker | None = None
        self.turn_idx: int | None = None
        self.connect_ms: float | None = None
        self.session_created_ms: float | None = None
        self._session_created = trio.Event()
        self._session_updated = trio.Event()
        self._turn_done = trio.Event()
        self._ended: str | None = None
        self._close_code: str | None = None
        self._turn_lateness_ms = 0.0

    # -- recording -------------------------------------------------------------------------

    def _error(self, phase: str, kind: str, code: str | None, message: str) -> None:
        self.sink.error(
            ErrorRecord(
                target=self.target.name, region=self.target.region, model=self.target.model,
                session_idx=self.idx, session_id=self.conn.session_id,
                turn_idx=self.turn_idx if phase == "turn" else None, phase=phase, kind=kind,
                code=code, message=message[:500], t_s=trio.current_time() - self.run_t0,
            )
        )

    def _phase(self) -> str:
        return "turn" if self.tracker is not None else "session"

    # -- main ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the whole session; every failure is recorded, none escapes."""
        sc = self.scenario
        t_c0 = trio.current_time()
        try:
            async with transport.open_connection(self.target, sc.connect_timeout_s) as ws:
                self.connect_ms = (trio.current_time() - t_c0) * 1000.0
                self.sink.recorder.record_ms(self.target.name, "connect_ms", self.connect_ms)
                async with trio.open_nursery() as nursery:
                    try:
                        nursery.start_soon(self._reader, ws, t_c0)
                        await self._configure(ws)
                        nursery.start_soon(self._pacer, ws)
                        for turn_idx in range(sc.turns_per_session):
                            await self._turn(turn_idx)
                    except SessionEnded:
                        pass
                    if self._ended is None:
                        self._ended = "finished"  # our own close is not an error
                    nursery.cancel_scope.cancel()
        except transport.HandshakeFailed as exc:
            kind = "http_status" if exc.status else (
                "timeout" if exc.code == "connect_timeout" else "connect")
            code = exc.code or (str(exc.status) if exc.status else None)
            self._error("connect", kind, code, str(exc))

    async def _configure(self, ws: trio_websocket.WebSocketConnection) -> None:
        sc = self.scenario
        with trio.move_on_after(sc.connect_timeout_s):
            await self._session_created.wait()
        self._check_alive("session.created")
        session = session_to_wire(sc.session, self.target.dialect)
        text = self.conn.send(Event(EventType.SESSION_UPDATE, {"session": session}))
        assert text is not None
        await ws.send_message(text)
        with trio.move_on_after(sc.connect_timeout_s):
            await self._session_updated.wait()
        self._check_alive("session.updated")

    def _check_alive(self, waited_for: str) -> None:
        if self._ended is not None:
            raise SessionEnded
        if (waited_for == "session.created" and not self._session_created.is_set()) or (
            waited_for == "session.updated" and not self._session_updated.is_set()
        ):
            self._error("session", "timeout", f"no_{waited_for.replace('.', '_')}",
                        f"no {waited_for} within {self.scenario.connect_timeout_s:g} s")
            raise SessionEnded

    async def _turn(self, turn_idx: int) -> None:
        if self._ended is not None:  # closed during the pause after the previous turn
            raise SessionEnded
        sc = self.scenario
        plan = self.plans[(self.idx + turn_idx) % len(self.plans)]
        t_start = trio.current_time()
        record = TurnRecord(
            target=self.target.name, region=self.target.region, model=self.target.model,
            session_idx=self.idx, session_id=self.conn.session_id, turn_idx=turn_idx,
            utterance=plan.utterance.name, t_start_s=t_start - self.run_t0, chunk_ms=sc.chunk_ms,
            speech_end_ms=plan.utterance.speech_end_ms, connect_ms=self.connect_ms,
            session_created_ms=self.session_created_ms,
        )
        tracker = TurnTracker(record)
        self._turn_done = trio.Event()
        self._turn_lateness_ms = 0.0
        self.tracker, self.turn_idx = tracker, turn_idx
        self.source.start(plan, tracker)
        with trio.move_on_after(sc.turn_timeout_s) as scope:
            await self._turn_done.wait()
        rec = tracker.finalize(timed_out=scope.cancelled_caught and self._ended is None)
        rec.send_lateness_max_ms = self._turn_lateness_ms
        if rec.status == "error" and self._close_code is not None and tracker.t_done is None \
                and tracker.error is None:
            rec.error_code = f"close_{self._close_code}"  # the connection went mid-turn
        if rec.status == "timeout":
            self._error("turn", "timeout", "turn_timeout",
                        f"no response.done within {sc.turn_timeout_s:g} s")
        elif rec.status == "error" and self._ended is None:
            kind = "error_event" if tracker.t_done is None else "response_failed"
            message = tracker.error.message if tracker.error else f"status {rec.response_status}"
            self._error("turn", kind, rec.error_code, message)
        self._record_turn(rec)
        self.tracker = None
        if self._ended is not None:
            raise SessionEnded
        # Keep the line open like a microphone: trailing silence after speech, then think time.
        t_eos = tracker.t_eos if tracker.t_eos is not None else t_start
        resume = max(trio.current_time() + sc.think_time_ms / 1000.0,
                     t_eos + sc.trailing_silence_ms / 1000.0)
        await trio.sleep_until(resume)

    def _record_turn(self, rec: TurnRecord) -> None:
        if rec.status == "ok":
            rec_ms = self.sink.recorder.record_ms
            for metric in ("vad_ms", "ttfa_ms", "first_transcript_ms", "response_done_ms"):
                rec_ms(self.target.name, metric, getattr(rec, metric))
        self.sink.turn(rec)

    # -- tasks -----------------------------------------------------------------------------

    async def _pacer(self, ws: trio_websocket.WebSocketConnection) -> None:
        chunk_s = self.scenario.chunk_ms / 1000.0
        t0 = trio.current_time()
        k = 0
        series = self.sink.recorder.series(self.target.name, SEND_LATENESS)
        while True:
            deadline = t0 + (k + 1) * chunk_s
            await trio.sleep_until(deadline)
            frame, eos_tracker = self.source.next()
            try:
                await ws.send_message(frame)
            except trio_websocket.ConnectionClosed as exc:
                self._closed(exc)
                return
            t_sent = trio.current_time()
            late_ms = (t_sent - deadline) * 1000.0
            series.record_ms(late_ms)
            self._turn_lateness_ms = max(self._turn_lateness_ms, late_ms)
            if eos_tracker is not None:
                eos_tracker.on_eos_sent(t_sent)
            k += 1

    async def _reader(self, ws: trio_websocket.WebSocketConnection, t_c0: float) -> None:
        while True:
            try:
                frame = await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                self._closed(exc)
                return
            t = trio.current_time()  # stamped before parsing
            try:
                event = self.conn.receive(frame)
            except ProtocolViolation as exc:
                self._error(self._phase(), "protocol", exc.kind, exc.detail)
                continue
            self._dispatch(event, t, t_c0)

    def _dispatch(self, event: Event, t: float, t_c0: float) -> None:
        etype = event.type
        if etype == EventType.SESSION_CREATED and not self._session_created.is_set():
            self.session_created_ms = (t - t_c0) * 1000.0
            self.sink.recorder.record_ms(self.target.name, "session_created_ms",
                                         self.session_created_ms)
            self._session_created.set()
        elif etype == EventType.SESSION_UPDATED:
            self._session_updated.set()
        elif etype == EventType.ERROR and self.tracker is None:
            self._session_error(event)
        tracker = self.tracker
        if tracker is not None:
            tracker.on_event(event, t)
            if tracker.finished:
                self._turn_done.set()

    def _session_error(self, event: Event) -> None:
        """An ``error`` outside a turn: while configuring it ends the session (the seed case)."""
        info = event.error_fields() or ErrorInfo("unknown", None, "")
        self._error("session", "error_event", info.code or info.type, info.message)
        if not self._session_updated.is_set():
            self._end("error during session set-up")

    def _closed(self, exc: trio_websocket.ConnectionClosed) -> None:
        if self._ended is not None:
            return
        reason = exc.reason
        code = str(reason.code) if reason is not None else None
        self._close_code = code
        message = (reason.reason or reason.name) if reason is not None else "closed"
        self._error(self._phase(), "close", code, f"connection closed: {message}")
        self._end("closed")

    def _end(self, why: str) -> None:
        self._ended = why
        self._session_created.set()
        self._session_updated.set()
        self._turn_done.set()
