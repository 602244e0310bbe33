"""One simulated Realtime session, sans-IO: client events and the clock in, timed output out.

``receive(event, now)`` and ``start(now)`` schedule what the server will send; the I/O edge asks
``next_due()`` and sleeps until then, or until the next client message, and sends what
``pop_due(now)`` returns: :class:`Event` objects or a :class:`Close`. Nothing here reads a clock
or a socket, so the whole server-side protocol is unit-testable with made-up times.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..protocol import (
    Dialect,
    ErrorInfo,
    Event,
    EventType,
    SessionConfig,
    SessionUpdateRejected,
    encode,
    new_id,
    session_from_wire,
)
from ..protocol.audio import SAMPLES_PER_MS, EnergyVad, b64_audio_ms, b64_to_pcm, chunk_levels
from . import payloads
from .faults import FaultRule
from .profile import Profile

MIN_COMMIT_MS = 100
MAX_METADATA_PAIRS = 16
#: Items a session remembers for retrieve/delete/truncate/item_reference; the oldest go first.
#: The service keeps the whole conversation, but a simulator serving thousands of hour-long
#: sessions must not grow without bound (~1 kB per item). 64 (32 two-item turns): at 256 the
#: simulator of a 200-session soak grew 3 MiB a minute for all of its 10 minutes (+23 % over
#: the second half) as sessions filled their history; at 64 it was flat (+0.5 %).
MAX_ITEMS = 64
#: ``response.create`` fields that are not session fields (the rest override the session's).
#: (``reasoning`` is a session field too: a response's effort overrides the session's, §10.2.)
_RESPONSE_ONLY_KEYS = ("metadata", "conversation", "input", "prompt", "parallel_tool_calls")


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with this code (``None`` = drop TCP without a close frame)."""

    code: int | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Raw:
    """Send this text as is, bypassing the codec (a malformed frame, on purpose)."""

    text: str


@dataclass(frozen=True, slots=True)
class Injected:
    """Not sent: tells the I/O edge that a fault of ``kind`` takes effect now (to count it)."""

    kind: str


Output = Event | Close | Raw | Injected


@dataclass
class _Response:
    id: str
    item_id: str                    # the item being spoken: the preamble, then the answer
    input_item_id: str | None
    cfg: SessionConfig              # the session's, with this response's overrides
    metadata: dict[str, str] | None = None
    in_conversation: bool = True    # False for ``conversation: "none"`` (out of band)
    output_index: int = 0           # of ``item_id`` in the response's output
    previous_item_id: str | None = None  # the item ``item_id`` follows in the conversation
    audio_ms: float = 0.0           # audio planned for ``item_id``
    done_items: list[dict[str, Any]] = field(default_factory=list)  # a finished preamble


@dataclass(frozen=True, slots=True)
class _Finish:
    """Internal timer: the active response's last delta is out (or it fails now); close it."""

    response_id: str
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """Internal timer: the preamble item (``preamble``, completed) is over; the response's
    answer item ``item_id`` of ``audio_ms`` is the one spoken from now on."""

    response_id: str
    preamble: dict[str, Any]
    item_id: str
    audio_ms: float


@dataclass(frozen=True, slots=True)
class _Store:
    """Internal timer: the conversation holds ``item`` from now on (when its event goes out),
    so ``conversation.item.retrieve`` answers what the client could have heard of by then.
    ``update`` only replaces an item still there (a transcript arriving after a delete)."""

    item: dict[str, Any]
    update: bool = False


@dataclass(frozen=True, slots=True)
class _Idle:
    """Internal timer: ``idle_timeout_ms`` after the last response's audio has played; fires
    only if nothing started since (speech or a response bump ``generation``)."""

    generation: int


_Internal = _Finish | _Answer | _Store | _Idle


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    output: Output | _Internal = field(compare=False)
    tag: str | None = field(compare=False, default=None)  # response id, for cancellation


def _tone_delta(ms: int, silent_ms: int = 0) -> str:
    """Base64 PCM16 of ``silent_ms`` of digital silence then a quiet 220 Hz tone (-24 dBFS),
    ``ms`` long in all: what an audio delta carries."""
    import base64

    n = (ms - silent_ms) * SAMPLES_PER_MS
    t = np.arange(n) / (SAMPLES_PER_MS * 1000)
    pcm = np.concatenate([np.zeros(silent_ms * SAMPLES_PER_MS),
                          3000 * np.sin(2 * np.pi * 220 * t)]).astype("<i2")
    return base64.b64encode(pcm.tobytes()).decode()


class SimSession:
    """Server-side behaviour of one Realtime session."""

    def __init__(
        self,
        dialect: Dialect,
        profile: Profile,
        *,
        model: str,
        rng: random.Random | None = None,
        load: Callable[[], int] = lambda: 1,
        faults: Sequence[FaultRule] = (),
        response_fault: Callable[[int], FaultRule | None] = lambda n: None,
        azure: bool = False,
    ) -> None:
        self.dialect = dialect
        self.profile = profile
        self.rng = rng or random.Random()
        self.load = load
        self.session_faults = {rule.kind: rule for rule in faults}
        self.response_fault = response_fault
        self.azure = azure
        self.responses_started = 0
        self.session_id = new_id("sess")
        self.conversation_id = new_id("conv")
        self.config = SessionConfig(model=payloads.reported_model(model, dialect))
        self._vad = self._make_vad()
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self.closed = False
        self.buffer_ms = 0.0            # audio appended since the last commit
        self.input_ms = 0.0             # whole input timeline
        self._item_id: str | None = None  # the user item being spoken
        self._last_item: str | None = None
        self._speech_end_arrival: float | None = None
        self._last_speech_frame = -1
        self.response: _Response | None = None
        self._item_audio_ms: dict[str, float] = {}
        self._items: dict[str, dict[str, Any]] = {}  # the conversation, in order, by item id
        self._last_response_id: str | None = None
        self._deltas: dict[tuple[int, int], str] = {}
        self.counts: dict[str, int] = {}
        self._idle_generation = 0       # bumped by speech and responses: stale idle timers

    # -- scheduling ------------------------------------------------------------------------

    def _emit(self, at: float, etype: str, tag: str | None = None, **data: Any) -> None:
        self._push(at, Event(etype, data), tag)

    def _push(self, at: float, output: Output | _Internal, tag: str | None = None) -> None:
        heapq.heappush(self._queue, _Pending(at, next(self._seq), output, tag))

    def next_due(self) -> float | None:
        return self._queue[0].due if self._queue else None

    def pop_due(self, now: float) -> list[Output]:
        out: list[Output] = []
        while self._queue and self._queue[0].due <= now:
            pending = heapq.heappop(self._queue)
            item = pending.output
            if isinstance(item, _Finish):
                self._finish_marker(item, pending.due)
                continue
            if isinstance(item, _Store):
                self._store(item)
                continue
            if isinstance(item, _Answer):
                self._answer(item)
                continue
            if isinstance(item, _Idle):
                self._idle_timeout(item, pending.due)
                continue
            out.append(item)
            if isinstance(item, Close):
                self.closed = True
                self._queue.clear()
                break
        return out

    def _store(self, store: _Store) -> None:
        item_id = store.item["id"]
        if store.update and item_id not in self._items:
            return
        self._items[item_id] = store.item
        if len(self._items) > MAX_ITEMS:
            oldest = next(iter(self._items))
            del self._items[oldest]
            self._item_audio_ms.pop(oldest, None)

    def _drop(self, tag: str) -> None:
        self._queue = [p for p in self._queue if p.tag != tag]
        heapq.heapify(self._queue)

    def _error(self, now: float, code: str | None, message: str, *, type: str = "invalid_request_error",
               param: str | None = None, client_event: Event | None = None) -> None:
        eid = client_event.get("event_id") if client_event is not None else None
        info = ErrorInfo(type=type, code=code, message=message, param=param)
        self._emit(now, EventType.ERROR, **payloads.error_body(info, eid))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, now: float, wall_time: float) -> None:
        """Queue ``session.created`` (and beta ``conversation.created``); arm session expiry.

        Session faults act here: ``server_error_after_created`` puts a ``server_error`` right
        after ``session.created`` (the shape of the Azure capture in the shared fixtures);
        ``early_expiry`` shortens the session's life.
        """
        expires = int(wall_time + self.profile.session_max_s)
        self._emit(now, EventType.SESSION_CREATED, session=payloads.session_object(
            self.config, self.dialect, self.session_id, expires))
        if "server_error_after_created" in self.session_faults:
            self._push(now, Injected("server_error_after_created"))
            self._error(now, None, payloads.server_error_message(self.session_id, self.azure),
                        type="server_error")
        if self.dialect is Dialect.BETA:
            self._emit(now, EventType.CONVERSATION_CREATED, conversation={
                "id": self.conversation_id, "object": "realtime.conversation"})
        max_s = self.profile.session_max_s
        early = self.session_faults.get("early_expiry")
        if early is not None:
            max_s = early.param("after_s")
            self._push(now + max_s, Injected("early_expiry"))
        expiry = now + max_s
        minutes = self.profile.session_max_s / 60
        self._error(expiry, "session_expired",
                    f"Your session hit the maximum duration of {minutes:g} minutes.")
        self._push(expiry, Close(1001, f"Your session hit the maximum duration of {minutes:g} "
                                       "minutes."))

    def reject_beta_shape(self, now: float) -> None:
        """OpenAI after May 2026: a beta-shaped connection gets an error, then close 4000."""
        info = payloads.BETA_SHAPE_DISABLED
        self._emit(now, EventType.ERROR, **payloads.error_body(info))
        self._push(now, Close(4000, f"{info.type}.{info.code}"))

    def receive(self, event: Event, now: float) -> None:
        handler = _HANDLERS.get(event.type)
        self.counts[event.type] = self.counts.get(event.type, 0) + 1
        if handler is None:
            self._error(now, "invalid_value", f"Invalid value: '{event.type}'. Supported values "
                        "are client event types.", param="type", client_event=event)
            return
        handler(self, event, now)

    def protocol_error(self, now: float, message: str) -> None:
        """A frame the server could not parse (bad JSON, binary)."""
        self._error(now, None, f"Invalid JSON or message format: {message}", param=None)

    # -- session ---------------------------------------------------------------------------

    def _make_vad(self) -> EnergyVad | None:
        td = self.config.turn_detection
        if td is None:
            return None
        # semantic VAD is approximated by the energy detector with an eagerness-based window
        silence = td.silence_duration_ms if td.type == "server_vad" else {
            "low": 1200, "medium": 600, "auto": 600, "high": 300}.get(td.eagerness, 600)
        return EnergyVad(td.threshold, td.prefix_padding_ms, silence)

    def _on_session_update(self, event: Event, now: float) -> None:
        try:
            cfg = session_from_wire(event.get("session"), self.dialect, self.config)
        except SessionUpdateRejected as exc:
            self._error(now, exc.code, exc.message, param=exc.param, client_event=event)
            return
        vad_changed = cfg.turn_detection != self.config.turn_detection
        self.config = cfg
        if vad_changed:
            self._vad = self._make_vad()
            if self._vad is not None:  # keep the input timeline
                self._vad.frames_seen = int(self.input_ms) // 10
        expires = int(now)  # updated events carry no new expiry; value unused by clients
        body = payloads.session_object(cfg, self.dialect, self.session_id, expires)
        body.pop("expires_at")
        self._emit(now, EventType.SESSION_UPDATED, session=body)
        if cfg.transcription_model is not None and self.session_faults.pop(
                "server_error_on_transcription", None) is not None:
            # a feature-specific backend failure, in the seed's shape (for rtbench probe)
            self._push(now, Injected("server_error_on_transcription"))
            self._error(now, None, payloads.server_error_message(self.session_id, self.azure),
                        type="server_error")

    # -- input audio -----------------------------------------------------------------------

    def _on_append(self, event: Event, now: float) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            self._error(now, "invalid_type", "Invalid type for 'audio': expected a string.",
                        param="audio", client_event=event)
            return
        try:
            levels = chunk_levels(audio)
        except ValueError:
            self._error(now, "invalid_value", "Invalid 'audio': not base64.", param="audio",
                        client_event=event)
            return
        ms = levels.samples / SAMPLES_PER_MS
        self.buffer_ms += ms
        self.input_ms += ms
        vad = self._vad
        if vad is None:
            return
        if levels.energies is not None and vad.frame_aligned:
            decisions = vad.feed_frames(levels.energies)
        else:
            decisions = vad.feed(b64_to_pcm(audio))
        for decision in decisions:
            if decision.kind == "started":
                self._speech_started(now, decision.audio_ms)
            else:
                self._speech_stopped(now, decision.audio_ms)
        if vad.last_speech_frame != self._last_speech_frame:
            self._last_speech_frame = vad.last_speech_frame
            self._speech_end_arrival = now

    def _speech_started(self, now: float, audio_start_ms: int) -> None:
        self._idle_generation += 1
        self._item_id = new_id("item")
        self._emit(now, EventType.SPEECH_STARTED, audio_start_ms=audio_start_ms,
                   item_id=self._item_id)
        td = self.config.turn_detection
        if self.response is not None and td is not None and td.interrupt_response:
            self._cancel(now, "turn_detected")

    def _speech_stopped(self, now: float, audio_end_ms: int) -> None:
        at = now + self.profile.vad_delay.sample(self.rng) / 1000.0
        item_id = self._item_id or new_id("item")
        self._emit(at, EventType.SPEECH_STOPPED, audio_end_ms=audio_end_ms, item_id=item_id)
        self._commit(at, item_id)
        td = self.config.turn_detection
        if td is not None and td.create_response and self.response is None:
            self._start_response(at, item_id, anchor=self._speech_end_arrival)

    def _commit(self, at: float, item_id: str) -> None:
        prev = self._last_item
        self._emit(at, EventType.INPUT_AUDIO_COMMITTED, item_id=item_id, previous_item_id=prev)
        self._item_added(at, payloads.user_item(item_id), prev)
        self._last_item = item_id
        self._item_id = None
        if self.config.transcription_model is not None:
            self._transcribe(at, item_id)
        self.buffer_ms = 0.0

    def _item_added(self, at: float, item: dict[str, Any], prev: str | None,
                    tag: str | None = None) -> None:
        self._emit(at, EventType.ITEM_ADDED, tag, previous_item_id=prev, item=item)
        self._push(at, _Store(item), tag)
        if self.dialect is Dialect.GA and item.get("status") == "completed":
            self._emit(at, EventType.ITEM_DONE, tag, previous_item_id=prev, item=item)

    def _transcribe(self, at: float, item_id: str) -> None:
        done = at + self.profile.transcription_delay.sample(self.rng) / 1000.0
        text = "What is the weather like tomorrow?"
        self._emit(done, EventType.TRANSCRIPTION_DELTA, item_id=item_id, content_index=0,
                   delta=text)
        self._emit(done, EventType.TRANSCRIPTION_COMPLETED, item_id=item_id, content_index=0,
                   transcript=text, usage={"type": "duration", "seconds": 2.0})
        self._push(done, _Store(payloads.user_item(item_id, transcript=text), update=True))

    def _on_commit(self, event: Event, now: float) -> None:
        if self.buffer_ms < MIN_COMMIT_MS:
            self._error(now, "input_audio_buffer_commit_empty",
                        "Error committing input audio buffer: buffer too small. Expected at "
                        f"least {MIN_COMMIT_MS}ms of audio, but buffer only has "
                        f"{self.buffer_ms:.2f}ms of audio.", client_event=event)
            return
        self._commit(now, self._item_id or new_id("item"))
        if self._vad is not None:
            self._vad.reset()
        self._speech_end_arrival = now

    def _on_clear(self, event: Event, now: float) -> None:
        self.buffer_ms = 0.0
        if self._vad is not None:
            self._vad.reset()
        self._emit(now, EventType.INPUT_AUDIO_CLEARED)

    def _on_item_create(self, event: Event, now: float) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            self._error(now, "missing_required_parameter", "Missing required parameter: 'item'.",
                        param="item", client_event=event)
            return
        item = {**item, "id": item.get("id") or new_id("item"), "object": "realtime.item",
                "status": "completed"}
        prev = event.get("previous_item_id", self._last_item)
        self._item_added(now, item, prev)
        self._last_item = item["id"]

    def _on_item_retrieve(self, event: Event, now: float) -> None:
        item = self._items.get(str(event.get("item_id")))
        if item is None:
            self._unknown_item(now, "item_retrieve_invalid_item_id", event)
            return
        self._emit(now, EventType.ITEM_RETRIEVED, item=item)

    def _on_item_delete(self, event: Event, now: float) -> None:
        item_id = str(event.get("item_id"))
        if self._items.pop(item_id, None) is None:
            self._unknown_item(now, "item_delete_invalid_item_id", event)
            return
        self._item_audio_ms.pop(item_id, None)
        if self._last_item == item_id:
            self._last_item = next(reversed(self._items), None)
        self._emit(now, EventType.ITEM_DELETED, item_id=item_id)

    def _unknown_item(self, now: float, code: str, event: Event) -> None:
        self._error(now, code, f"Item with item_id '{event.get('item_id')}' not found.",
                    param="item_id", client_event=event)

    # -- responses -------------------------------------------------------------------------

    def _on_response_create(self, event: Event, now: float) -> None:
        if self.response is not None:
            self._error(now, "conversation_already_has_active_response",
                        "Conversation already has an active response in progress: "
                        f"{self.response.id}. Wait until the response is finished before "
                        "creating a new one.", client_event=event)
            return
        params = event.get("response") or {}
        try:
            resp = self._response_params(params)
        except SessionUpdateRejected as exc:
            self._error(now, exc.code, exc.message, param=exc.param, client_event=event)
            return
        self._start_response(now, self._last_item, anchor=now, params=resp)

    def _response_params(self, params: object) -> _Response:
        """A response with ``response.create``'s overrides of the session (ref §10.4): output
        modalities, instructions, voice, limits; ``metadata`` to echo; ``conversation: "none"``
        for an out-of-band response; ``input`` (its ``item_reference`` ids must exist)."""
        if not isinstance(params, dict):
            raise _response_reject("invalid_type", "response", "expected an object")
        overrides = {k: v for k, v in params.items() if k not in _RESPONSE_ONLY_KEYS}
        try:
            cfg = session_from_wire(overrides, self.dialect, self.config, require_type=False)
        except SessionUpdateRejected as exc:  # the same check, worded for the response
            raise SessionUpdateRejected(
                code=exc.code, param=exc.param.replace("session.", "response.", 1),
                message=exc.message.replace("'session.", "'response.")) from None
        metadata = params.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values())):
            raise _response_reject("invalid_type", "metadata", "expected an object of strings")
        if metadata is not None and len(metadata) > MAX_METADATA_PAIRS:
            raise _response_reject("invalid_value", "metadata",
                                   f"at most {MAX_METADATA_PAIRS} key-value pairs")
        conversation = params.get("conversation", "auto")
        if conversation not in ("auto", "none"):
            raise _response_reject("invalid_value", "conversation", "expected 'auto' or 'none'")
        inputs = params.get("input", [])
        if not isinstance(inputs, list):
            raise _response_reject("invalid_type", "input", "expected an array")
        for i, item in enumerate(inputs):
            if not isinstance(item, dict) or "type" not in item:
                raise _response_reject("missing_required_parameter", f"input[{i}].type",
                                       "an item needs a type")
            if item["type"] == "item_reference" and item.get("id") not in self._items:
                raise _response_reject("invalid_value", f"input[{i}].id",
                                       f"no item with id '{item.get('id')}'")
        return _Response(id=new_id("resp"), item_id=new_id("item"), input_item_id=None, cfg=cfg,
                         metadata=metadata, in_conversation=conversation == "auto")

    def _delta(self, ms: int, silent_ms: int = 0) -> str:
        found = self._deltas.get((ms, silent_ms))
        if found is None:
            found = self._deltas[ms, silent_ms] = _tone_delta(ms, silent_ms)
        return found

    def _start_response(self, at: float, input_item: str | None, anchor: float | None,
                        params: _Response | None = None) -> None:
        """Schedule a whole response; a response fault from the plan changes how it goes.

        ``params`` carries a ``response.create``'s overrides; a VAD turn has none. With a
        preamble (profile ``preamble_ms``) the response speaks two message items (§10.2)."""
        self.responses_started += 1
        self._idle_generation += 1
        fault = self.response_fault(self.responses_started)
        if fault is not None and fault.kind == "stall":
            self._push(at, Injected("stall"))  # nothing at all: the client must time out
            return
        prof = self.profile
        resp = params or _Response(id=new_id("resp"), item_id=new_id("item"),
                                   input_item_id=None, cfg=self.config)
        resp.input_item_id = resp.previous_item_id = input_item
        if fault is not None and fault.kind == "text_only":
            # a text-only model (or mock) answers in text whatever the session asked for
            self._push(at, Injected(fault.kind))
            resp.cfg = replace(resp.cfg, output_modalities=("text",))
        cfg = resp.cfg
        self.response = resp
        self._last_response_id = resp.id
        rid, tag = resp.id, resp.id
        self._emit(at, EventType.RESPONSE_CREATED, tag, response=self._response_body(
            resp, status="in_progress"))
        preamble = prof.preamble_ms > 0 and (prof.preamble_probability >= 1.0
                                             or self.rng.random() < prof.preamble_probability)
        answer_id = resp.item_id
        if preamble:
            resp.item_id = new_id("item")
        pad = prof.silence_pad_ms
        resp.audio_ms = float(pad + (prof.preamble_ms if preamble else prof.response_audio_ms))
        audio = cfg.output_modalities == ("audio",)
        self._open_item(at, resp, audio, tag)
        # First audio: from the arrival of the end of speech, never before the decision; a
        # reasoning model thinks longer at a higher effort (§10.2).
        latency = (prof.first_audio.sample(self.rng) + prof.load_penalty_ms(self.load())
                   + prof.effort_delay(cfg.reasoning_effort))
        first = max(at, (anchor if anchor is not None else at) + latency / 1000.0)
        factor = prof.realtime_factor
        if fault is not None and fault.kind == "slow_drip":
            factor = fault.param("realtime_factor")
            self._push(first, Injected(fault.kind), tag)
        step = prof.delta_ms / 1000.0 / factor
        if fault is not None and fault.kind in payloads.RESPONSE_FAILURES:
            # fails where its first audio would have been: no audio, then response.done failed
            self._push(first, Injected(fault.kind), tag)
            self._push(first, _Finish(rid, payloads.RESPONSE_FAILURES[fault.kind]), tag)
            return
        words = prof.transcript.split(" ")
        times = self._stream(resp, first, step, pad, audio, tag,
                             payloads.PREAMBLE_TRANSCRIPT.split(" ") if preamble else words)
        if preamble:
            # the preamble is generated by ``t_end``; the answer's first audio follows once the
            # preamble has played in real time from its first byte, plus the answer's delay
            t_end = times[-1] + step
            item = self._close_item(t_end, resp, "completed", payloads.PREAMBLE_TRANSCRIPT,
                                    audio, tag)
            self._push(t_end, _Answer(rid, item, answer_id, float(prof.response_audio_ms)), tag)
            answer = _Response(id=rid, item_id=answer_id, input_item_id=input_item, cfg=cfg,
                               in_conversation=resp.in_conversation, output_index=1,
                               previous_item_id=resp.item_id,
                               audio_ms=float(prof.response_audio_ms))
            self._open_item(t_end, answer, audio, tag)
            t_answer = max(t_end, first + resp.audio_ms / 1000.0
                           + prof.answer_delay.sample(self.rng) / 1000.0)
            times += self._stream(answer, t_answer, step, 0, audio, tag, words)
        if fault is not None and fault.kind == "malformed_json":
            idx = self._idx(resp)
            kind = EventType.AUDIO_TRANSCRIPT_DELTA if audio else EventType.TEXT_DELTA
            self._push(times[0], Injected(fault.kind), tag)
            self._push(times[0], Raw(self._truncated(kind, idx)), tag)
        if fault is not None and fault.kind == "tcp_drop":
            sent = min(len(times), int(fault.param("after_deltas")))
            # half a step after the ``sent``-th delta went out, before the next one is due
            t_drop = max(at, (times[sent - 1] if sent else first - step) + step / 2)
            self._push(t_drop, Injected(fault.kind), tag)
            self._push(t_drop, Close(None, "tcp_drop"), tag)
            return
        self._push(times[-1] + step, _Finish(rid), tag)

    @staticmethod
    def _idx(resp: _Response) -> dict[str, Any]:
        return {"response_id": resp.id, "item_id": resp.item_id,
                "output_index": resp.output_index, "content_index": 0}

    def _open_item(self, at: float, resp: _Response, audio: bool, tag: str) -> None:
        """The events that start ``resp.item_id``: the item, and its one content part."""
        item = payloads.assistant_item(resp.item_id, self.dialect, "in_progress", None)
        self._emit(at, EventType.OUTPUT_ITEM_ADDED, tag, response_id=resp.id,
                   output_index=resp.output_index, item=item)
        if resp.in_conversation:
            self._item_added(at, item, resp.previous_item_id, tag)
            if resp.output_index == 0:  # an answer after a preamble: once it starts (_answer)
                self._last_item = resp.item_id
        self._emit(at, EventType.CONTENT_PART_ADDED, tag, **self._idx(resp),
                   part={"type": "audio", "transcript": ""} if audio else
                   {"type": "text", "text": ""})

    def _stream(self, resp: _Response, first: float, step: float, silent_ms: int, audio: bool,
                tag: str, words: list[str]) -> list[float]:
        """Schedule the deltas of ``resp.item_id`` (``resp.audio_ms`` of audio, the first
        ``silent_ms`` of it silent; or its text), one each ``step`` from ``first``."""
        delta_ms = self.profile.delta_ms
        total = int(resp.audio_ms)
        n_deltas = max(1, -(-total // delta_ms))
        idx = self._idx(resp)
        delta_kind = EventType.AUDIO_DELTA if audio else EventType.TEXT_DELTA
        transcript_kind = EventType.AUDIO_TRANSCRIPT_DELTA if audio else EventType.TEXT_DELTA
        times = []
        for i in range(n_deltas):
            t = first + i * step
            if audio:
                ms = min(delta_ms, total - i * delta_ms)
                silent = min(ms, max(0, silent_ms - i * delta_ms))
                self._emit(t, delta_kind, tag, **idx, delta=self._delta(ms, silent))
            word = " ".join(words[i * len(words) // n_deltas:(i + 1) * len(words) // n_deltas])
            if word:
                self._emit(t, transcript_kind, tag, **idx, delta=word + " ")
            times.append(t)
        return times

    def _answer(self, marker: _Answer) -> None:
        """The preamble is over: it is in the conversation; the answer item speaks now."""
        resp = self.response
        if resp is None or resp.id != marker.response_id:
            return
        self._item_audio_ms[resp.item_id] = resp.audio_ms
        resp.done_items.append(marker.preamble)
        resp.previous_item_id, resp.item_id = resp.item_id, marker.item_id
        if resp.in_conversation:
            self._last_item = resp.item_id
        resp.output_index += 1
        resp.audio_ms = marker.audio_ms

    def _truncated(self, kind: str, idx: dict[str, Any]) -> str:
        """A frame cut off mid-JSON: what a broken proxy or a torn write would deliver."""
        text = encode(Event(kind, {"event_id": new_id("event"), **idx, "delta": "Sure, "}),
                      self.dialect)
        assert text is not None
        return text[: len(text) // 2]

    def _finish(self, now: float, status: str, details: dict[str, Any] | None,
                audio_ms: float) -> None:
        """The closing events of the active response; ``status`` completed/cancelled/failed."""
        resp = self.response
        assert resp is not None
        self.response = None
        transcript = self.profile.transcript if status == "completed" else ""
        item = self._close_item(now, resp, status, transcript,
                                resp.cfg.output_modalities == ("audio",), None)
        if resp.in_conversation:
            self._item_audio_ms[resp.item_id] = audio_ms
        output = [*resp.done_items, item]
        spoken_ms = audio_ms + sum(self._item_audio_ms.get(i["id"], 0.0) for i in resp.done_items)
        usage = payloads.usage(2000.0, spoken_ms, len(transcript.split()))
        self._arm_idle_timeout(now + spoken_ms / 1000.0)
        self._emit(now, EventType.RESPONSE_DONE, response=self._response_body(
            resp, status=status, status_details=details, output=output, usage=usage))
        self._emit(now, EventType.RATE_LIMITS_UPDATED, **payloads.rate_limits(
            40000 - usage["total_tokens"]))

    def _close_item(self, at: float, resp: _Response, status: str, transcript: str, audio: bool,
                    tag: str | None) -> dict[str, Any]:
        """The events that end ``resp.item_id`` (``status`` of its response: completed,
        cancelled or failed); returns the item as it ends."""
        idx = self._idx(resp)
        if status != "failed":
            if audio:
                self._emit(at, EventType.AUDIO_DONE, tag, **idx)
                self._emit(at, EventType.AUDIO_TRANSCRIPT_DONE, tag, **idx, transcript=transcript)
                part = {"type": "audio", "transcript": transcript}
            else:
                self._emit(at, EventType.TEXT_DONE, tag, **idx, text=transcript)
                part = {"type": "text", "text": transcript}
            self._emit(at, EventType.CONTENT_PART_DONE, tag, **idx, part=part)
        item = payloads.assistant_item(resp.item_id, self.dialect,
                                       "completed" if status == "completed" else "incomplete",
                                       transcript if audio else None)
        self._emit(at, EventType.OUTPUT_ITEM_DONE, tag, response_id=resp.id,
                   output_index=resp.output_index, item=item)
        if resp.in_conversation:
            if self.dialect is Dialect.GA:
                self._emit(at, EventType.ITEM_DONE, tag, previous_item_id=resp.previous_item_id,
                           item=item)
            self._push(at, _Store(item, update=True), tag)
        return item

    def _response_body(self, resp: _Response, **fields: Any) -> dict[str, Any]:
        conversation = self.conversation_id if resp.in_conversation else None
        return payloads.response_object(resp.id, conversation, resp.cfg, self.dialect,
                                        metadata=resp.metadata, **fields)

    def _cancel(self, now: float, reason: str) -> None:
        resp = self.response
        assert resp is not None
        sent = self._audio_sent_by(resp, now)
        self._drop(resp.id)
        self._finish(now, "cancelled", {"type": "cancelled", "reason": reason}, sent)

    def fail_response(self, now: float, error: ErrorInfo) -> bool:
        """End the active response as ``failed`` with ``error`` (fault injection)."""
        resp = self.response
        if resp is None:
            return False
        self._drop(resp.id)
        self._finish(now, "failed", {"type": "failed", "error": {"type": error.type,
                                                                "code": error.code,
                                                                "message": error.message}}, 0.0)
        return True

    def _audio_sent_by(self, resp: _Response, now: float) -> float:
        """Audio ms of the item ``resp`` is speaking already out (deltas still queued are not)."""
        queued = sum(b64_audio_ms(p.output.get("delta")) for p in self._queue
                     if p.tag == resp.id and isinstance(p.output, Event)
                     and p.output.type == EventType.AUDIO_DELTA
                     and p.output.get("item_id") == resp.item_id)
        return resp.audio_ms - queued

    def _on_response_cancel(self, event: Event, now: float) -> None:
        wanted = event.get("response_id")
        if self.response is None or wanted not in (None, self.response.id):
            self._error(now, "response_cancel_not_active",
                        "Cancellation failed: no active response found", client_event=event)
            return
        self._cancel(now, "client_cancelled")

    def _on_output_audio_clear(self, event: Event, now: float) -> None:
        """``output_audio_buffer.clear``: documented for WebRTC/SIP, where the server stops the
        response's audio and sends ``output_audio_buffer.cleared``. Over a WebSocket there is
        no server-side playback buffer; this answers the same way (stopping an active response
        as a cancel would) so a client written for either transport gets its acknowledgement.
        UNCERTAIN: no capture of the service's WebSocket answer."""
        if self.response is not None:
            self._cancel(now, "client_cancelled")
        if self._last_response_id is None:
            self._error(now, None, "There is no output audio to clear.", client_event=event)
            return
        self._emit(now, EventType.OUTPUT_AUDIO_CLEARED, response_id=self._last_response_id)

    def _on_truncate(self, event: Event, now: float) -> None:
        item_id = event.get("item_id")
        end = event.get("audio_end_ms")
        if self.response is not None and self.response.item_id == item_id:
            self._cancel(now, "client_cancelled")
        have = self._item_audio_ms.get(str(item_id))
        if have is None:
            self._error(now, "item_truncate_invalid_item_id",
                        f"Item with item_id '{item_id}' not found.", param="item_id",
                        client_event=event)
            return
        if not isinstance(end, int) or end < 0 or end > have:
            self._error(now, "invalid_value", f"Audio content of {have:.0f}ms is already "
                        f"shorter than {end}ms", param="audio_end_ms", client_event=event)
            return
        self._item_audio_ms[str(item_id)] = float(end)
        self._emit(now, EventType.ITEM_TRUNCATED, item_id=item_id,
                   content_index=event.get("content_index", 0), audio_end_ms=end)

    def _arm_idle_timeout(self, played: float) -> None:
        """GA server VAD with ``idle_timeout_ms``: the timeout runs from ``played``, the
        ``response.done`` time plus the response's audio playback duration (the SDK docstring
        of ``idle_timeout_ms``; §3.4)."""
        td = self.config.turn_detection
        if (self.dialect is Dialect.GA and td is not None and td.type == "server_vad"
                and td.idle_timeout_ms is not None):
            self._push(played + td.idle_timeout_ms / 1000.0, _Idle(self._idle_generation))

    def _idle_timeout(self, timer: _Idle, now: float) -> None:
        """No speech and no response since the timer was armed: ``timeout_triggered`` with the
        silent segment (its length the timeout, §4.4 fields), the empty audio committed as an
        item, and a response (the SDK docstring of ``InputAudioBufferTimeoutTriggered``)."""
        td = self.config.turn_detection
        vad = self._vad
        if (timer.generation != self._idle_generation or self.response is not None
                or td is None or td.idle_timeout_ms is None or (vad is not None and vad.in_speech)):
            return
        end = int(self.input_ms)
        item_id = new_id("item")
        self._emit(now, EventType.INPUT_AUDIO_TIMEOUT, audio_start_ms=max(0, end - td.idle_timeout_ms),
                   audio_end_ms=end, item_id=item_id)
        self._commit(now, item_id)
        self._start_response(now, item_id, anchor=now)

    def _finish_marker(self, marker: _Finish, now: float) -> None:
        if self.response is None or self.response.id != marker.response_id:
            return
        if marker.error is not None:
            self.fail_response(now, marker.error)
        else:
            self._finish(now, "completed", None, self.response.audio_ms)


#: Client event type -> handler. On the class, not per session: a dict of bound methods on the
#: session would be a reference cycle, freed only by the cyclic collector, which the simulator
#: runs rarely (gcpolicy.py); without it a finished session is freed at once.
_HANDLERS: dict[str, Callable[[SimSession, Event, float], None]] = {
    EventType.SESSION_UPDATE: SimSession._on_session_update,
    EventType.INPUT_AUDIO_APPEND: SimSession._on_append,
    EventType.INPUT_AUDIO_COMMIT: SimSession._on_commit,
    EventType.INPUT_AUDIO_CLEAR: SimSession._on_clear,
    EventType.RESPONSE_CREATE: SimSession._on_response_create,
    EventType.RESPONSE_CANCEL: SimSession._on_response_cancel,
    EventType.ITEM_TRUNCATE: SimSession._on_truncate,
    EventType.ITEM_CREATE: SimSession._on_item_create,
    EventType.ITEM_RETRIEVE: SimSession._on_item_retrieve,
    EventType.ITEM_DELETE: SimSession._on_item_delete,
    EventType.OUTPUT_AUDIO_CLEAR: SimSession._on_output_audio_clear,
}


def _response_reject(code: str, param: str, detail: str) -> SessionUpdateRejected:
    """A ``response.create`` field the server refuses, worded as the services word it."""
    return SessionUpdateRejected(code=code, param=f"response.{param}",
                                 message=f"Invalid value for 'response.{param}': {detail}.")

__all__ = ["Close", "Injected", "Output", "Raw", "SimSession"]
