"""Shape checks for the server events the client reads: a table of required fields and types.

A frame that parses as JSON but carries the wrong types (``"delta": 5``, ``"response": []``)
must become a recorded protocol error, not a crash deep inside timing code. Only the fields
rtbench reads are checked; extra fields are always allowed (the services add fields freely).
"""

from __future__ import annotations

from collections.abc import Mapping

from .codec import ProtocolViolation
from .events import Event, EventType

_INT = (int,)
_STR = (str,)
_OBJ = (Mapping,)
_LIST = (list,)
_STR_OR_NONE = (str, type(None))

#: canonical event type -> (field, accepted types) that must be present.
REQUIRED_FIELDS: dict[str, tuple[tuple[str, tuple[type, ...]], ...]] = {
    EventType.ERROR: (("error", _OBJ),),
    EventType.SESSION_CREATED: (("session", _OBJ),),
    EventType.SESSION_UPDATED: (("session", _OBJ),),
    EventType.SPEECH_STARTED: (("audio_start_ms", _INT), ("item_id", _STR)),
    EventType.SPEECH_STOPPED: (("audio_end_ms", _INT), ("item_id", _STR)),
    EventType.INPUT_AUDIO_COMMITTED: (("item_id", _STR),),
    EventType.RESPONSE_CREATED: (("response", _OBJ),),
    EventType.RESPONSE_DONE: (("response", _OBJ),),
    EventType.AUDIO_DELTA: (("response_id", _STR), ("item_id", _STR), ("delta", _STR)),
    EventType.AUDIO_TRANSCRIPT_DELTA: (("response_id", _STR), ("delta", _STR)),
    EventType.TEXT_DELTA: (("response_id", _STR), ("delta", _STR)),
    EventType.RATE_LIMITS_UPDATED: (("rate_limits", _LIST),),
}
#: Nested objects: (container field, field, accepted types).
NESTED_FIELDS: dict[str, tuple[tuple[str, str, tuple[type, ...]], ...]] = {
    EventType.ERROR: (("error", "type", _STR), ("error", "message", _STR),
                      ("error", "code", _STR_OR_NONE)),
    EventType.RESPONSE_CREATED: (("response", "id", _STR),),
    EventType.RESPONSE_DONE: (("response", "id", _STR), ("response", "status", _STR)),
}


def _ok(value: object, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def check_server_event(event: Event) -> None:
    """Raise ProtocolViolation("bad_field") if a field rtbench reads is missing or mistyped."""
    if not isinstance(event.data.get("event_id"), str):
        raise ProtocolViolation("bad_field", f"{event.type}: event_id missing or not a string")
    for name, types in REQUIRED_FIELDS.get(event.type, ()):
        if not _ok(event.data.get(name), types):
            raise ProtocolViolation("bad_field", f"{event.type}: {name!r} missing or mistyped")
    for container, name, types in NESTED_FIELDS.get(event.type, ()):
        obj = event.data[container]
        if name not in obj and type(None) in types:
            continue
        if not _ok(obj.get(name), types):
            raise ProtocolViolation("bad_field",
                                    f"{event.type}: {container}.{name} missing or mistyped")
