"""Timing of one turn from stamped events: pure, no sockets, no clock.

The session hands every received event with the time it was stamped (before parsing) and the
send time of the chunk holding the last speech sample (``T_eos``). The tracker attributes
events to this turn's response (the first ``response.created`` after the turn began; deltas of
any other response are ignored) and derives the latencies of protocol reference §7.2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .audio import b64_audio_ms
from .protocol import ErrorInfo, Event, EventType
from .records import TurnRecord

#: Error codes that are races the client can live with; they do not fail a turn (ref §5.2).
BENIGN_ERROR_CODES = frozenset(
    {
        "conversation_already_has_active_response",
        "response_cancel_not_active",
        "input_audio_buffer_commit_empty",
    }
)


class TurnTracker:
    """Collects one turn's stamps; ``finished`` turns True at this response's ``response.done``."""

    def __init__(self, record: TurnRecord) -> None:
        self.record = record
        self.t_eos: float | None = None
        self.t_speech_stopped: float | None = None
        self.t_first_audio: float | None = None
        self.t_first_transcript: float | None = None
        self.t_done: float | None = None
        self.finished = False
        self.error: ErrorInfo | None = None
        self._handlers: dict[str, Callable[[Event, float], None]] = {
            EventType.SPEECH_STOPPED: self._on_speech_stopped,
            EventType.RESPONSE_CREATED: self._on_response_created,
            EventType.AUDIO_DELTA: self._on_audio_delta,
            EventType.AUDIO_TRANSCRIPT_DELTA: self._on_transcript_delta,
            EventType.TEXT_DELTA: self._on_transcript_delta,
            EventType.RESPONSE_DONE: self._on_response_done,
            EventType.ERROR: self._on_error,
        }

    def on_eos_sent(self, t: float) -> None:
        self.t_eos = t

    def on_event(self, event: Event, t: float) -> None:
        handler = self._handlers.get(event.type)
        if handler is not None and not self.finished:
            handler(event, t)

    def _mine(self, event: Event) -> bool:
        rid = self.record.response_id
        return rid is not None and event.get("response_id") == rid

    def _on_speech_stopped(self, event: Event, t: float) -> None:
        if self.t_speech_stopped is None:
            self.t_speech_stopped = t
            end = event.get("audio_end_ms")
            self.record.audio_end_ms = end if isinstance(end, int) else None

    def _on_response_created(self, event: Event, t: float) -> None:
        if self.record.response_id is None:
            response = event.get("response")
            if isinstance(response, Mapping):
                self.record.response_id = response.get("id")

    def _on_audio_delta(self, event: Event, t: float) -> None:
        if not self._mine(event):
            return
        if self.t_first_audio is None:
            self.t_first_audio = t
        delta = event.get("delta")
        if isinstance(delta, str):
            self.record.output_audio_ms += b64_audio_ms(delta)

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
        self.t_done = t
        self.record.response_id = response.get("id")
        self.record.response_status = str(response.get("status"))
        details = response.get("status_details")
        if isinstance(details, Mapping):
            self.record.status_reason = details.get("reason")
            if details.get("error") is not None:
                self.error = ErrorInfo.from_mapping(details.get("error"))
        _copy_usage(self.record, response.get("usage"))
        self.finished = True

    def _on_error(self, event: Event, t: float) -> None:
        info = event.error_fields()
        if info is None or info.code in BENIGN_ERROR_CODES:
            return
        self.error = info
        self.finished = True

    def finalize(self, *, timed_out: bool) -> TurnRecord:
        """Fill latencies relative to T_eos and the turn status."""
        rec = self.record
        if self.t_eos is not None:
            rec.vad_ms = _ms(self.t_speech_stopped, self.t_eos)
            rec.ttfa_ms = _ms(self.t_first_audio, self.t_eos)
            rec.first_transcript_ms = _ms(self.t_first_transcript, self.t_eos)
            rec.response_done_ms = _ms(self.t_done, self.t_eos)
        if timed_out:
            rec.status = "timeout"
            rec.error_code = "turn_timeout"
        elif self.error is not None:
            rec.status = "error"
            rec.error_code = self.error.code or self.error.type
        elif rec.response_status != "completed":
            rec.status = "error"
            rec.error_code = f"response_{rec.response_status}"
        else:
            rec.status = "ok"
        # Rows of failed turns keep their partial timings for diagnosis; only "ok" turns enter
        # the latency histograms (the session decides that), so a timeout is never a latency.
        return rec


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else (t - t0) * 1000.0


def _copy_usage(rec: TurnRecord, usage: Any) -> None:
    if isinstance(usage, Mapping):
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(key)
            setattr(rec, key, value if isinstance(value, int) else None)
