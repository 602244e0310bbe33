"""The client side of one Realtime conversation, sans-IO: events in, actions out.

Why: the benchmark session (``client.session``) and the set-up probe (``client.probe``) run the
same script (wait for ``session.created``, configure, take turns, classify what went wrong); this
object holds that script once, the way h11's ``Connection`` holds HTTP's, so both drive it and
neither re-implements it. It is fed what the peer sent (``receive_frame(frame, t)``, stamped
before parsing), what the caller did (``configure``, ``begin_turn``, ``eos_sent(turn, t)``,
``commit_sent``, ``barge_sent``, ``end_turn``) and what the caller saw (``closed``,
``setup_timed_out``), and it answers with typed actions (:class:`Send`, :class:`Failed`,
:class:`TurnEnded`, ...). Wire specifics live in the :class:`~rtbench.protocol.adapters.Adapter`;
this file sees normalized (canonical GA) events only.

Rules of this file:

- No I/O and no clock: every input carries its own time stamp; sockets, timers, tasks and the
  pacing of audio belong to the caller. (Checked: ``protocol`` may not import trio or sockets.)
- What the peer sent is *queued*: ``receive_frame`` / ``receive`` return only whether the frame
  was usable, and the caller takes the actions with :meth:`Conversation.next_actions` where it
  reads. What the caller does or sees *returns* its actions: the caller asked, the caller acts.
- Actions come oldest first and are acted on in that order (an error row before the end it
  causes, an error row before the turn row).
- Nothing a server can send raises: a malformed frame becomes a ``protocol`` error row, an
  unknown event type a ``benign`` row (the first of each type) and a count (reference §4.2).

Set-up (reference §3.1; a (state, input) pair not in ``SETUP_TRANSITIONS`` keeps the state)::

    state        input                      next          actions
    CONNECTED    session.created            CREATED       SessionCreated(t)
    CREATED      configure(config)          CONFIGURING   Send(session.update)
    READY        configure(config)          CONFIGURING   Send(session.update)
    CONFIGURING  session.updated            READY         SessionUpdated(t)
    not READY    error                      ENDED         Failed(session, error_event), Ended
    READY        error, no turn in flight   READY         Failed(session, error_event)
    CONNECTED,   setup_timed_out()          ENDED         Failed(session, timeout), Ended
     CONFIGURING
    any          closed(code)               ENDED         Failed(phase, close), Ended
    any          finish()                   ENDED         (our own close is not an error)

``session.updated`` outside CONFIGURING answers nothing we sent and is ignored; events keep
being read after ENDED (their error rows still count) but nothing ends twice.

Turns (reference §3.2 server VAD, §3.3 manual, §3.6 barge-in, §7.2 timing): each turn in flight
has a :class:`~rtbench.protocol.turn.TurnTracker` (attribution and latencies). Every event goes to
every turn in flight; the conversation says when a turn saw its first audio
(:class:`FirstAudio`), when its response is over (:class:`ResponseEnded`: ``response.done`` or a
non-benign ``error``, §5.2) and when a truncate was confirmed (:class:`Truncated`). While a turn
was barged into, ``input_audio_buffer.speech_started`` means the server heard the new speech:
the client stops "playing" and sends ``conversation.item.truncate`` with the milliseconds
played (§3.6). :meth:`Conversation.end_turn` finalizes the record and names its error row:
``timeout`` (saying how far the turn got), ``error_event`` (an ``error`` ended it),
``response_failed`` (``response.done`` not completed), ``no_audio`` (completed, but nothing
audible although the session asked for audio, §10.3), or none when the connection's close
(already recorded) is what cut it. ``input_audio_buffer.timeout_triggered`` (``idle_timeout_ms``,
§3.4) is a benign ``idle_timeout`` row; the response it triggers, like any response created
while no turn could take it, is claimed by no turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..metrics.records import TurnRecord
from .adapters import Adapter
from .audio import AUDIBLE_THRESHOLD
from .codec import ProtocolViolation
from .events import ErrorInfo, Event, EventType
from .session_config import SessionConfig
from .taxonomy import BENIGN, classify
from .turn import NO_AUDIO, TurnTracker


class Setup(StrEnum):
    """Where the set-up of the session stands."""

    CONNECTED = "connected"      # socket open, waiting for session.created
    CREATED = "created"          # session.created came; nothing configured by us yet
    CONFIGURING = "configuring"  # session.update sent, waiting for session.updated
    READY = "ready"              # session.updated came: turns may run
    ENDED = "ended"              # closed, refused or finished: no turn starts


#: The caller's ``configure()`` as an input of the set-up table.
CONFIGURE: Final = "configure()"

#: (state, input) -> next state; the table in the module docstring, as data.
SETUP_TRANSITIONS: dict[tuple[Setup, str], Setup] = {
    (Setup.CONNECTED, EventType.SESSION_CREATED): Setup.CREATED,
    (Setup.CREATED, CONFIGURE): Setup.CONFIGURING,
    (Setup.READY, CONFIGURE): Setup.CONFIGURING,
    (Setup.CONFIGURING, EventType.SESSION_UPDATED): Setup.READY,
}

#: What the set-up waits for in each waiting state (named in the timeout row).
AWAITING: dict[Setup, str] = {
    Setup.CONNECTED: EventType.SESSION_CREATED,
    Setup.CONFIGURING: EventType.SESSION_UPDATED,
}

# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Put ``wire`` (``event`` as the adapter encodes it) on the socket."""

    event: Event
    wire: str


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """``session.created`` arrived at ``t`` (the session's first event)."""

    t: float


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    """``session.updated`` answered our configuration at ``t``: turns may start."""

    t: float


@dataclass(frozen=True, slots=True)
class FirstAudio:
    """Turn ``turn`` received the first audio of its response."""

    turn: int


@dataclass(frozen=True, slots=True)
class ResponseEnded:
    """Turn ``turn``'s response is over (its ``response.done``, or an error that ends it)."""

    turn: int


@dataclass(frozen=True, slots=True)
class Truncated:
    """The server confirmed the truncate of turn ``turn``'s interrupted audio."""

    turn: int


@dataclass(frozen=True, slots=True)
class Failed:
    """An error row: where (``phase``: connect, session, turn), what, and how bad (§5.2)."""

    phase: str
    kind: str
    code: str | None
    severity: str
    message: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The conversation cannot go on (``why``); the caller stops waiting and starts no turn."""

    why: str


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """A turn's finished row (its ``status`` says ok, error or timeout)."""

    record: TurnRecord


Action = (Send | SessionCreated | SessionUpdated | FirstAudio | ResponseEnded | Truncated | Failed
          | Ended | TurnEnded)

_NO_ACTIONS: Final[Sequence[Action]] = ()


def failure(phase: str, kind: str, code: str | None, message: str,
            severity: str | None = None) -> Failed:
    """A :class:`Failed` row, its severity classified from kind and code unless given."""
    return Failed(phase, kind, code, severity or classify(kind, code), message)


@dataclass(slots=True)
class Turn:
    """One turn in flight. ``sends``: what follows the user's speech (manual mode: commit and
    ``response.create``, §3.3), for the caller to send right after the utterance's last chunk."""

    idx: int
    tracker: TurnTracker
    sends: tuple[Send, ...] = ()


class Conversation:
    """The client-side state of one Realtime conversation (see the module docstring)."""

    def __init__(self, adapter: Adapter, *, audible_threshold: float = AUDIBLE_THRESHOLD) -> None:
        self.adapter = adapter
        self.audible_threshold = audible_threshold  # of the output audio's onset detector
        self.expect_audio = False            # the configured session outputs audio
        self.state = Setup.CONNECTED
        self.session_id: str | None = None
        self.ended: str | None = None        # why it ended; None while it goes on
        self.close_code: str | None = None   # the WebSocket close code, once closed
        self.turns: list[Turn] = []          # in flight, oldest first (two during a barge-in)
        self.unknown_events: dict[str, int] = {}
        self._claimed: set[str] = set()      # response ids taken (by a turn, or by none)
        self._idle_timeout_pending = False   # timeout_triggered came: its response is next
        self._queue: list[Action] = []

    # -- reading --------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        """Where an error row belongs: ``turn`` while a turn is in flight, else ``session``."""
        return "turn" if self.turns else "session"

    @property
    def awaiting(self) -> str | None:
        """The event the set-up waits for (``session.created``/``session.updated``), or None."""
        return AWAITING.get(self.state)

    def next_actions(self) -> Sequence[Action]:
        """Take the actions queued by received events, oldest first (an empty tuple if none)."""
        queued = self._queue
        if not queued:
            return _NO_ACTIONS
        self._queue = []
        return queued

    # -- inputs from the peer (queued) -----------------------------------------------------------

    def receive_frame(self, frame: str | bytes, t: float) -> bool:
        """Decode one message received at ``t`` and act on it; False when it held no usable event
        (a malformed frame, recorded as a protocol error; an unknown type, counted)."""
        try:
            events = self.adapter.decode(frame)
        except ProtocolViolation as exc:
            self._queue.append(failure(self.phase, "protocol", exc.kind, exc.detail))
            return False
        used = False
        for event in events:
            used = self.receive(event, t) or used
        return used

    def receive(self, event: Event, t: float) -> bool:
        """Act on one normalized event received at ``t``; False for an unknown type."""
        if not event.known:
            seen = self.unknown_events.get(event.type, 0)
            self.unknown_events[event.type] = seen + 1
            if not seen:
                self._queue.append(failure(self.phase, "unknown_event", event.type[:100],
                                           "event type unknown to rtbench (kept, not used)",
                                           BENIGN))
            return False
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event, t)
        for turn in self.turns:
            tracker = turn.tracker
            had_audio, finished = tracker.t_first_audio is not None, tracker.finished
            truncated = tracker.record.truncated
            tracker.on_event(event, t)
            if not had_audio and tracker.t_first_audio is not None:
                self._queue.append(FirstAudio(turn.idx))
            if not finished and tracker.finished:
                self._queue.append(ResponseEnded(turn.idx))
            if not truncated and tracker.record.truncated:
                self._queue.append(Truncated(turn.idx))
        return True

    def _on_response_created(self, event: Event, t: float) -> None:
        """Claim, before the turns see it, a response no turn may take: the one an idle
        timeout triggered, and one created while no turn waits for a response (the answer to
        the rest of an utterance split at a pause, after its turn ended). A turn that starts
        later must not take its ``response.done`` for its own. (A turn takes a response when
        it has none yet and is not finished: exactly the turns ``waiting`` looks for.)"""
        idle, self._idle_timeout_pending = self._idle_timeout_pending, False
        waiting = any(turn.tracker.record.response_id is None and not turn.tracker.finished
                      for turn in self.turns)
        if idle or not waiting:
            response = event.get("response")
            rid = response.get("id") if isinstance(response, Mapping) else None
            if isinstance(rid, str):
                self._claimed.add(rid)

    def _on_session_created(self, event: Event, t: float) -> None:
        if self._advance(EventType.SESSION_CREATED):
            session = event.get("session")
            if isinstance(session, Mapping) and isinstance(session.get("id"), str):
                self.session_id = session["id"]
            self._queue.append(SessionCreated(t))

    def _on_session_updated(self, event: Event, t: float) -> None:
        if self._advance(EventType.SESSION_UPDATED):
            self._queue.append(SessionUpdated(t))

    def _on_error(self, event: Event, t: float) -> None:
        """An ``error`` outside a turn (a turn's own errors are its tracker's, §5.1): during the
        set-up it ends the session (the seed case: an error right after ``session.created``)."""
        if self.turns:
            return
        info = event.error_fields() or ErrorInfo("unknown", None, "")
        hint = self.adapter.explain_setup_error(info)
        message = f"{hint} (server said: {info.message})" if hint else info.message
        self._queue.append(failure("session", "error_event", info.code or info.type, message))
        if self.state is not Setup.READY:
            self._queue.extend(self._end("error during session set-up"))

    def _on_timeout_triggered(self, event: Event, t: float) -> None:
        """``input_audio_buffer.timeout_triggered`` (``idle_timeout_ms``, §3.4, §10.4): no
        speech for that long after the last response's playback, so the server commits the
        (silent) audio and answers on its own. That response answers no turn of ours: it is
        claimed as soon as it is created, and a benign row says it happened."""
        self._idle_timeout_pending = True
        start, end = event.get("audio_start_ms"), event.get("audio_end_ms")
        idle = f" ({end - start} ms of input without speech)" if (
            isinstance(start, int) and isinstance(end, int)) else ""
        self._queue.append(failure(self.phase, "idle_timeout", "timeout_triggered",
                                   f"input_audio_buffer.timeout_triggered{idle}: the server "
                                   "answers on its own (idle_timeout_ms)", BENIGN))

    def _on_speech_started(self, event: Event, t: float) -> None:
        """The server heard our barge-in: stop 'playing' and say how much was heard (§3.6)."""
        for turn in self.turns:
            tr = turn.tracker
            if tr.t_barge is not None and not tr.finished and tr.item_id is not None and (
                    tr.record.truncate_audio_end_ms is None):
                item_id, played = tr.playing(t)
                tr.item_id = item_id  # the item whose truncation the server confirms
                tr.record.truncate_audio_end_ms = played
                send = self._send(EventType.ITEM_TRUNCATE, {
                    "item_id": item_id, "content_index": 0, "audio_end_ms": played})
                if send is not None:
                    self._queue.append(send)

    # -- inputs from the caller (returned) --------------------------------------------------------

    def configure(self, config: SessionConfig) -> Send:
        """The ``session.update`` to send now (valid once ``session.created`` came)."""
        if not self._advance(CONFIGURE):
            raise ValueError(f"cannot configure in state {self.state}")
        self.expect_audio = "audio" in config.output_modalities
        send = self._send_event(self.adapter.session_update(config))
        if send is None:
            raise ValueError(f"adapter {self.adapter.name} has no session update")
        return send

    def begin_turn(self, record: TurnRecord, *, manual: bool = False,
                   spoken: bool = False) -> Turn:
        """Start tracking turn ``record.turn_idx``; ``manual``: no server VAD, the turn's
        :attr:`Turn.sends` commit the audio and ask for the response (§3.3); ``spoken``: the
        caller will say when the utterance's last speech chunk left (:meth:`eos_sent`), so a
        response over before then answered too early and the turn waits for the next."""
        sends: tuple[Send, ...] = ()
        if manual:
            sends = self._sends(EventType.INPUT_AUDIO_COMMIT, EventType.RESPONSE_CREATE)
        tracker = TurnTracker(record, self._claimed, audible_threshold=self.audible_threshold,
                              expect_audio=self.expect_audio, spoken=spoken)
        turn = Turn(record.turn_idx, tracker, sends)
        self.turns.append(turn)
        return turn

    def prompt(self, text: str) -> tuple[Send, ...]:
        """A typed user message and ``response.create``, to send at once (a turn without audio)."""
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        create = self._send(EventType.ITEM_CREATE, {"item": item})
        return tuple(s for s in (create, *self._sends(EventType.RESPONSE_CREATE)) if s is not None)

    def eos_sent(self, turn: int, t: float) -> None:
        """The chunk holding the turn's last speech sample was sent at ``t`` (T_eos, §7.2)."""
        found = self._find(turn)
        if found is not None:
            found.tracker.on_eos_sent(t)

    def commit_sent(self, turn: int, t: float) -> None:
        """Manual mode: the commit went at ``t``; TTFA counts from it (§7.2)."""
        found = self._find(turn)
        if found is not None:
            found.tracker.on_commit_sent(t)

    def barge_sent(self, turn: int, t: float) -> None:
        """The user's next speech started being sent at ``t``, into turn ``turn``'s response."""
        found = self._find(turn)
        if found is not None:
            found.tracker.on_barge_sent(t)

    def end_turn(self, turn: int, *, timed_out_after_s: float | None = None) -> list[Action]:
        """Finalize turn ``turn`` (``timed_out_after_s``: the caller gave up waiting after that
        long) and name its error row; returns ``[Failed?, TurnEnded]``."""
        found = self._find(turn)
        if found is None:
            raise ValueError(f"turn {turn} is not in flight")
        tracker = found.tracker
        rec = tracker.finalize(timed_out=timed_out_after_s is not None and self.ended is None)
        # Failed only because the connection went: the close is the error (recorded already).
        cut_by_close = tracker.t_done is None and tracker.error is None
        if rec.status == "error" and self.close_code is not None and cut_by_close:
            rec.error_code = f"close_{self.close_code}"
        actions: list[Action] = []
        if rec.status == "timeout":
            actions.append(failure("turn", "timeout", "turn_timeout",
                                   f"no response.done within {timed_out_after_s:g} s "
                                   f"({tracker.progress()})"))
        elif rec.error_code == NO_AUDIO:
            heard = f"{rec.output_audio_ms:g} ms of audio, none above the audible threshold" if (
                rec.output_audio_ms) else "no audio delta"
            actions.append(failure("turn", NO_AUDIO, NO_AUDIO,
                                   f"response {rec.response_id} completed with {heard}"))
        elif rec.status == "error" and not (self.ended is not None and cut_by_close):
            # An error event or failed response.done is recorded even when the close came in
            # the same read (session_expired, then close 1001, in one TCP segment).
            kind = "error_event" if tracker.t_done is None else "response_failed"
            message = tracker.error.message if tracker.error else f"status {rec.response_status}"
            actions.append(failure("turn", kind, rec.error_code, message))
        self.turns.remove(found)
        actions.append(TurnEnded(rec))
        return actions

    def setup_timed_out(self, waited_s: float) -> list[Action]:
        """The caller waited ``waited_s`` for :attr:`awaiting` in vain: the set-up failed."""
        waited = self.awaiting
        if waited is None:
            raise ValueError(f"the set-up waits for nothing in state {self.state}")
        row = failure("session", "timeout", f"no_{waited.replace('.', '_')}",
                      f"no {waited} within {waited_s:g} s")
        return [row, *self._end(f"no {waited}")]

    def closed(self, code: str, reason: str) -> list[Action]:
        """The transport closed (``code``: the WebSocket close code); nothing after an end."""
        if self.ended is not None:
            return []
        self.close_code = code
        row = failure(self.phase, "close", code, f"connection closed: {reason}")
        return [row, *self._end("closed")]

    def finish(self) -> None:
        """We are done and close ourselves: the end is not an error."""
        if self.ended is None:
            self._end("finished")

    # -- helpers ---------------------------------------------------------------------------------

    def _advance(self, key: str) -> bool:
        nxt = SETUP_TRANSITIONS.get((self.state, key))
        if nxt is None:
            return False
        self.state = nxt
        return True

    def _end(self, why: str) -> list[Action]:
        if self.ended is not None:
            return []
        self.ended, self.state = why, Setup.ENDED
        return [Ended(why)]

    def _find(self, idx: int) -> Turn | None:
        for turn in self.turns:
            if turn.idx == idx:
                return turn
        return None

    def _send_event(self, event: Event) -> Send | None:
        wire = self.adapter.encode(event)
        return None if wire is None else Send(event, wire)

    def _send(self, etype: str, data: dict[str, object]) -> Send | None:
        return self._send_event(Event(etype, data))

    def _sends(self, *etypes: str) -> tuple[Send, ...]:
        return tuple(s for s in (self._send(e, {}) for e in etypes) if s is not None)


#: Normalized event type -> what the conversation itself does with it (turns see every event).
#: On the class, not per instance: bound methods held by the instance would be a reference
#: cycle, left to the rarely run cyclic collector (see ``turn._HANDLERS``).
_HANDLERS: dict[str, Callable[[Conversation, Event, float], None]] = {
    EventType.SESSION_CREATED: Conversation._on_session_created,
    EventType.SESSION_UPDATED: Conversation._on_session_updated,
    EventType.ERROR: Conversation._on_error,
    EventType.SPEECH_STARTED: Conversation._on_speech_started,
    EventType.INPUT_AUDIO_TIMEOUT: Conversation._on_timeout_triggered,
    EventType.RESPONSE_CREATED: Conversation._on_response_created,
}
