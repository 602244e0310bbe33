"""Timing of one turn from stamped events: pure, no sockets, no clock.

The session hands every received event with the time it was stamped (before parsing) and the
send time of the chunk holding the last speech sample (``T_eos``). The tracker attributes
events to this turn's response (the first ``response.created`` after the turn began; deltas of
any other response are ignored) and derives the latencies of protocol reference §7.2. A
response that answered only part of the utterance (the server's VAD ended the turn in a pause:
cancelled by the rest of the speech, or over before ``T_eos``) is replaced by the next one, the
turn flagged ``premature`` (§3.4, :meth:`TurnTracker._answer_again`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..metrics.records import TurnRecord
from . import ErrorInfo, Event, EventType
from .audio import AUDIBLE_THRESHOLD, EnergyVad, b64_audio_ms, b64_to_pcm
from .taxonomy import BENIGN_CODES

#: Error code of a completed response the session wanted audio from, with nothing audible.
NO_AUDIO = "no_audio"
#: The onset detector never decides "stopped"; its silence window only has to be positive.
_NEVER_MS = 1 << 30


@dataclass(slots=True)
class ItemAudio:
    """One output message item's audio: how much came and when it first became audible.

    ``onset`` is the energy detector fed this item's PCM until its first audible 10 ms window
    is found; then it is dropped, so later deltas of the item are counted, not decoded.
    """

    onset: EnergyVad | None
    received_ms: float = 0.0
    t_play_start: float | None = None   # when the player starts its first delta
    t_audible: float | None = None


class TurnTracker:
    """Collects one turn's stamps; ``finished`` turns True at this response's ``response.done``.

    ``claimed`` is shared by the trackers of one session: the response ids other turns own, so
    a turn that starts while an earlier response is still draining (barge-in) never takes that
    response's events for its own.
    """

    def __init__(self, record: TurnRecord, claimed: set[str] | None = None,
                 on_first_audio: Callable[[], None] | None = None, *,
                 audible_threshold: float = AUDIBLE_THRESHOLD, expect_audio: bool = False,
                 spoken: bool = False) -> None:
        self.record = record
        # the caller stamps T_eos when the utterance's last speech chunk leaves (a typed prompt
        # and the probe's speech do not): a response over before then answered too early
        self.spoken = spoken
        self.audible_threshold = audible_threshold
        self.expect_audio = expect_audio    # the session asked for audio: none is a failure
        self.claimed = claimed if claimed is not None else set()
        self.on_first_audio = on_first_audio
        self.t_eos: float | None = None
        self.t_anchor: float | None = None  # manual mode: commit sent; else = t_eos
        self.t_barge: float | None = None   # barge-in: our next speech started being sent
        self.t_last_audio: float | None = None
        self.item_id: str | None = None     # the assistant item carrying this response's audio
        self.residual_audio_ms = 0.0
        self.t_speech_started: float | None = None
        self.t_response_created: float | None = None
        self.t_committed: float | None = None
        self.t_speech_stopped: float | None = None
        self.t_first_audio: float | None = None
        # Output message items of this response, in order (the last one is the answer), and
        # when a real-time player that started at the first byte finishes what it has.
        self.items: dict[str, ItemAudio] = {}
        self.t_play_end: float | None = None
        self.t_first_transcript: float | None = None
        self.t_done: float | None = None
        self.finished = False
        self.error: ErrorInfo | None = None

    def on_eos_sent(self, t: float) -> None:
        self.t_eos = t

    def on_commit_sent(self, t: float) -> None:
        """Manual turn mode: TTFA counts from the commit (ref §7.2), there is no VAD term."""
        self.t_anchor = t

    def on_barge_sent(self, t: float) -> None:
        """The chunk holding the start of the user's next speech left at ``t``."""
        if not self.finished:
            self.t_barge = t
            self.record.barge_in = True

    def playing(self, t: float) -> tuple[str | None, int]:
        """The item a real-time player is playing at ``t`` (after a preamble: the answer, once
        it started) and how much of it it has played by then, never more than received: what
        ``conversation.item.truncate`` names (§3.6)."""
        current: tuple[str, float, float] | None = None  # id, play start, received
        for key, item in self.items.items():
            if item.t_play_start is not None and item.t_play_start <= t:
                current = key, item.t_play_start, item.received_ms
        if current is None:
            return self.item_id, 0
        key, start, received = current
        return key or None, int(min(received, (t - start) * 1000.0))

    def on_event(self, event: Event, t: float) -> None:
        handler = _HANDLERS.get(event.type)
        if handler is not None and (not self.finished or event.type == EventType.ITEM_TRUNCATED):
            handler(self, event, t)

    def _mine(self, event: Event) -> bool:
        rid = self.record.response_id
        return rid is not None and event.get("response_id") == rid

    def _on_speech_started(self, event: Event, t: float) -> None:
        if self.t_speech_started is None:
            self.t_speech_started = t

    def _on_committed(self, event: Event, t: float) -> None:
        if self.t_committed is None:
            self.t_committed = t

    def progress(self) -> str:
        """How far the turn got, for a timeout's row: what came, and the first that did not."""
        steps = [("speech_started", self.t_speech_started), ("committed", self.t_committed),
                 ("response.created", self.record.response_id), ("audio", self.t_first_audio),
                 ("audible audio", self.t_audible)]
        if self.t_anchor is not None:
            steps = steps[1:]  # manual mode: we committed, no server VAD
        seen: list[str] = []
        for name, stamp in steps:
            if stamp is None:
                return f"saw {', '.join(seen) or 'nothing of the turn'}; no {name}"
            seen.append(name)
        return f"saw {', '.join(seen)}; no response.done"

    def _on_speech_stopped(self, event: Event, t: float) -> None:
        if self.t_speech_stopped is None:
            self.t_speech_stopped = t
            end = event.get("audio_end_ms")
            self.record.audio_end_ms = end if isinstance(end, int) else None

    def _on_response_created(self, event: Event, t: float) -> None:
        if self.record.response_id is None:
            response = event.get("response")
            rid = response.get("id") if isinstance(response, Mapping) else None
            if isinstance(rid, str) and rid not in self.claimed:
                self.record.response_id = rid
                self.claimed.add(rid)
                if self.t_response_created is None:  # the first: a too-early one stays early
                    self.t_response_created = t

    def _item(self, item_id: object) -> ItemAudio:
        key = item_id if isinstance(item_id, str) else ""
        found = self.items.get(key)
        if found is None:
            found = self.items[key] = ItemAudio(EnergyVad(self.audible_threshold, 0, _NEVER_MS))
        return found

    def _on_item_added(self, event: Event, t: float) -> None:
        item = event.get("item")
        if self._mine(event) and isinstance(item, Mapping) and item.get("type") == "message":
            self._item(item.get("id"))

    def _on_audio_delta(self, event: Event, t: float) -> None:
        if not self._mine(event):
            return
        if self.t_first_audio is None:
            self.t_first_audio = t
            self.item_id = event.get("item_id")
            if self.on_first_audio is not None:
                self.on_first_audio()
        self.t_last_audio = t
        delta = event.get("delta")
        if isinstance(delta, str):
            ms = b64_audio_ms(delta)
            self.record.output_audio_ms += ms
            if self.t_barge is not None:
                self.residual_audio_ms += ms
            self._play(self._item(event.get("item_id")), delta, ms, t)

    def _play(self, item: ItemAudio, delta: str, ms: float, t: float) -> None:
        """Place ``delta`` on a real-time player's timeline (it plays from its arrival, or when
        what came before it has played) and, until the item is audible, look for the first
        window above the threshold: a listener hears it at its place on that timeline."""
        start = t if self.t_play_end is None else max(t, self.t_play_end)
        self.t_play_end = start + ms / 1000.0
        if item.t_play_start is None:
            item.t_play_start = start
        if item.onset is not None:
            for decision in item.onset.feed(b64_to_pcm(delta)):
                # The window may have begun in the previous delta's tail (a frame straddling
                # two deltas): then it is heard that much before this delta starts.
                item.t_audible = start + (decision.speech_edge_ms - item.received_ms) / 1000.0
                item.onset = None
                break
        item.received_ms += ms

    def _on_transcript_delta(self, event: Event, t: float) -> None:
        if self._mine(event) and self.t_first_transcript is None:
            self.t_first_transcript = t

    def _on_response_done(self, event: Event, t: float) -> None:
        response = event.get("response")
        if not isinstance(response, Mapping):
            return
        rid = self.record.response_id
        if rid is not None and response.get("id") != rid:
            return
        if rid is None and response.get("id") in self.claimed:
            return  # another turn's response (a failed one may come without response.created)
        details = response.get("status_details")
        status = response.get("status")
        heard_more = (status == "cancelled" and isinstance(details, Mapping)
                      and details.get("reason") == "turn_detected")
        too_early = self.spoken and self.t_eos is None and status != "failed"
        if rid is not None and self.t_barge is None and (heard_more or too_early):
            self._answer_again()
            return
        self.t_done = t
        self.record.response_id = response.get("id")
        self.record.response_status = str(response.get("status"))
        if isinstance(details, Mapping):
            self.record.status_reason = details.get("reason")
            if details.get("error") is not None:
                self.error = ErrorInfo.from_mapping(details.get("error"))
        _copy_usage(self.record, response.get("usage"))
        self.finished = True

    def _answer_again(self) -> None:
        """This turn's response answered part of the utterance: the server cancelled it because
        it heard more speech (``turn_detected``) and no barge-in was sent, or it was over before
        the utterance's last speech chunk left. The utterance went on after a pause the server's
        VAD took for the end of the turn (premature endpointing): with ``interrupt_response``
        the new speech cancels the response, and with ``create_response`` the server answers
        again once that speech ends (protocol reference §3.4). That answer is this turn's. So
        the turn follows the next response; the first stays claimed (no other turn takes it),
        and the stamps that came too early (``response.created``, ``speech_stopped``) keep the
        turn ``premature``."""
        self.record.response_id = None
        self.item_id = None
        self.t_first_audio = self.t_last_audio = self.t_first_transcript = None
        self.t_play_end = None
        self.items = {}
        self.record.output_audio_ms = 0.0

    def _on_error(self, event: Event, t: float) -> None:
        info = event.error_fields()
        if info is None or info.code in BENIGN_CODES:
            return
        self.error = info
        self.finished = True

    def _on_truncated(self, event: Event, t: float) -> None:
        if self.item_id is not None and event.get("item_id") == self.item_id:
            self.record.truncated = True

    @property
    def t_audible(self) -> float | None:
        """When the listener first hears this response (its earliest audible item), or None."""
        heard = [i.t_audible for i in self.items.values() if i.t_audible is not None]
        return min(heard) if heard else None

    def finalize(self, *, timed_out: bool) -> TurnRecord:
        """Fill latencies relative to the anchor (T_eos, or the commit in manual mode)."""
        rec = self.record
        items = list(self.items.values())
        anchor = self.t_anchor if self.t_anchor is not None else self.t_eos
        if anchor is not None:
            if self.t_anchor is None:
                rec.vad_ms = _ms(self.t_speech_stopped, anchor)
            rec.ttfb_ms = _ms(self.t_first_audio, anchor)
            rec.ttfa_ms = _ms(self.t_audible, anchor)
            rec.ttfa_answer_ms = _ms(items[-1].t_audible, anchor) if items else None
            rec.first_transcript_ms = _ms(self.t_first_transcript, anchor)
            rec.response_done_ms = _ms(self.t_done, anchor)
        if rec.ttfa_ms is not None and rec.ttfb_ms is not None:
            rec.silence_pad_ms = rec.ttfa_ms - rec.ttfb_ms
        early = [s for s in (self.t_response_created, self.t_speech_stopped) if s is not None]
        # a typed prompt has no T_eos: nothing to answer too early; a spoken turn that ended
        # before its T_eos (an error while the user spoke) had its stamps before it too
        rec.premature = bool(early) and (min(early) < self.t_eos if self.t_eos is not None
                                         else self.spoken)
        rec.output_items = len(items)
        rec.preamble_audio_ms = sum(i.received_ms for i in items[:-1])
        if self.t_barge is not None:
            rec.interrupt_ms = _ms(self.t_done, self.t_barge)
            rec.audio_stop_ms = _ms(self.t_last_audio, self.t_barge)
            rec.residual_audio_ms = self.residual_audio_ms
        if timed_out:
            rec.status = "timeout"
            rec.error_code = "turn_timeout"
        elif self.error is not None:
            rec.status = "error"
            rec.error_code = self.error.code or self.error.type
        elif rec.barge_in and rec.response_status == "cancelled":
            rec.status = "ok"  # interrupted on purpose: the cancellation is the expected end
        elif rec.response_status != "completed":
            rec.status = "error"
            rec.error_code = f"response_{rec.response_status}"
        elif self.expect_audio and self.t_audible is None:
            rec.status = "error"  # completed, but a listener heard nothing (§10.3)
            rec.error_code = NO_AUDIO
        else:
            rec.status = "ok"
        # Rows of failed turns keep their partial timings for diagnosis; only "ok" turns enter
        # the latency histograms (the session decides that), so a timeout is never a latency.
        return rec


#: Server event type -> handler. On the class, not per tracker: a dict of bound methods on the
#: tracker would be a reference cycle, left to the cyclic collector, which runs rarely during
#: a run (gcpolicy.py).
_HANDLERS: dict[str, Callable[[TurnTracker, Event, float], None]] = {
    EventType.SPEECH_STARTED: TurnTracker._on_speech_started,
    EventType.INPUT_AUDIO_COMMITTED: TurnTracker._on_committed,
    EventType.SPEECH_STOPPED: TurnTracker._on_speech_stopped,
    EventType.RESPONSE_CREATED: TurnTracker._on_response_created,
    EventType.OUTPUT_ITEM_ADDED: TurnTracker._on_item_added,
    EventType.AUDIO_DELTA: TurnTracker._on_audio_delta,
    EventType.AUDIO_TRANSCRIPT_DELTA: TurnTracker._on_transcript_delta,
    EventType.TEXT_DELTA: TurnTracker._on_transcript_delta,
    EventType.RESPONSE_DONE: TurnTracker._on_response_done,
    EventType.ERROR: TurnTracker._on_error,
    EventType.ITEM_TRUNCATED: TurnTracker._on_truncated,
}


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else (t - t0) * 1000.0


def _copy_usage(rec: TurnRecord, usage: Any) -> None:
    if isinstance(usage, Mapping):
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(key)
            setattr(rec, key, value if isinstance(value, int) else None)
