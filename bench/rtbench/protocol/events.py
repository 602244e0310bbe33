"""Realtime events as plain data.

Every event, whichever wire generation it came from, is held as an :class:`Event` whose ``type``
is the *canonical* (GA) name and whose ``data`` is every other field exactly as received. The
dialect layer renames beta events on the way in and out, so the client, the simulator and the
analysis code only ever see one vocabulary. Unknown event types are kept verbatim, never dropped:
a benchmark must be able to report what a server sent even when we did not expect it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Canonical (GA) names of the events rtbench understands."""

    # client -> server
    SESSION_UPDATE = "session.update"
    INPUT_AUDIO_APPEND = "input_audio_buffer.append"
    INPUT_AUDIO_COMMIT = "input_audio_buffer.commit"
    INPUT_AUDIO_CLEAR = "input_audio_buffer.clear"
    ITEM_CREATE = "conversation.item.create"
    ITEM_TRUNCATE = "conversation.item.truncate"
    ITEM_RETRIEVE = "conversation.item.retrieve"
    ITEM_DELETE = "conversation.item.delete"
    OUTPUT_AUDIO_CLEAR = "output_audio_buffer.clear"
    RESPONSE_CREATE = "response.create"
    RESPONSE_CANCEL = "response.cancel"

    # server -> client
    ERROR = "error"
    SESSION_CREATED = "session.created"
    SESSION_UPDATED = "session.updated"
    CONVERSATION_CREATED = "conversation.created"
    SPEECH_STARTED = "input_audio_buffer.speech_started"
    SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
    INPUT_AUDIO_COMMITTED = "input_audio_buffer.committed"
    INPUT_AUDIO_CLEARED = "input_audio_buffer.cleared"
    INPUT_AUDIO_TIMEOUT = "input_audio_buffer.timeout_triggered"
    ITEM_ADDED = "conversation.item.added"
    ITEM_DONE = "conversation.item.done"
    ITEM_CREATED = "conversation.item.created"
    ITEM_TRUNCATED = "conversation.item.truncated"
    ITEM_RETRIEVED = "conversation.item.retrieved"
    ITEM_DELETED = "conversation.item.deleted"
    OUTPUT_AUDIO_CLEARED = "output_audio_buffer.cleared"
    TRANSCRIPTION_DELTA = "conversation.item.input_audio_transcription.delta"
    TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"
    TRANSCRIPTION_FAILED = "conversation.item.input_audio_transcription.failed"
    RESPONSE_CREATED = "response.created"
    RESPONSE_DONE = "response.done"
    OUTPUT_ITEM_ADDED = "response.output_item.added"
    OUTPUT_ITEM_DONE = "response.output_item.done"
    CONTENT_PART_ADDED = "response.content_part.added"
    CONTENT_PART_DONE = "response.content_part.done"
    AUDIO_DELTA = "response.output_audio.delta"
    AUDIO_DONE = "response.output_audio.done"
    AUDIO_TRANSCRIPT_DELTA = "response.output_audio_transcript.delta"
    AUDIO_TRANSCRIPT_DONE = "response.output_audio_transcript.done"
    TEXT_DELTA = "response.output_text.delta"
    TEXT_DONE = "response.output_text.done"
    RATE_LIMITS_UPDATED = "rate_limits.updated"


CLIENT_EVENT_TYPES: frozenset[str] = frozenset(
    {
        EventType.SESSION_UPDATE,
        EventType.INPUT_AUDIO_APPEND,
        EventType.INPUT_AUDIO_COMMIT,
        EventType.INPUT_AUDIO_CLEAR,
        EventType.ITEM_CREATE,
        EventType.ITEM_TRUNCATE,
        EventType.ITEM_RETRIEVE,
        EventType.ITEM_DELETE,
        EventType.OUTPUT_AUDIO_CLEAR,
        EventType.RESPONSE_CREATE,
        EventType.RESPONSE_CANCEL,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One Realtime event: canonical ``type`` plus every other field as sent on the wire."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def known(self) -> bool:
        """False for event types this version of rtbench has no name for."""
        return self.type in _KNOWN

    def error_fields(self) -> ErrorInfo | None:
        """The ``error`` object of an ``error`` event, as an :class:`ErrorInfo`."""
        if self.type != EventType.ERROR:
            return None
        return ErrorInfo.from_mapping(self.data.get("error"))


_KNOWN: frozenset[str] = frozenset(e.value for e in EventType)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The fields of a Realtime ``error`` object (also used in ``status_details.error``)."""

    type: str
    code: str | None
    message: str
    param: str | None = None

    @classmethod
    def from_mapping(cls, raw: object) -> ErrorInfo:
        if not isinstance(raw, Mapping):
            return cls(type="invalid_error_object", code=None, message=repr(raw)[:200])
        code = raw.get("code")
        param = raw.get("param")
        return cls(
            type=str(raw.get("type") or "unknown"),
            code=None if code is None else str(code),
            message=str(raw.get("message") or ""),
            param=None if param is None else str(param),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "code": self.code, "message": self.message, "param": self.param}
