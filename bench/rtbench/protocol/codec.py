"""JSON text <-> :class:`Event`, for one wire generation.

Decoding renames the generation's event names to canonical ones and keeps every field; an
unknown ``type`` is kept as is. Anything that is not a JSON object with a string ``type``
(binary frames, bad JSON, wrong types) raises :class:`ProtocolViolation`, which callers record
as a protocol error instead of crashing.
"""

from __future__ import annotations

from typing import Any

import orjson

from .dialect import Dialect, canonical_name, wire_name
from .events import Event


class ProtocolViolation(Exception):
    """A frame that is not a valid Realtime event. ``kind`` is a short stable label."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


_MAX_DETAIL = 120


def _snippet(frame: str | bytes) -> str:
    text = frame if isinstance(frame, str) else repr(frame[:_MAX_DETAIL])
    return text[:_MAX_DETAIL] + ("…" if len(text) > _MAX_DETAIL else "")


def decode(frame: str | bytes, dialect: Dialect) -> Event:
    """Parse one WebSocket message into an Event (canonical type, all fields kept)."""
    if isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolViolation("binary_frame", f"{len(frame)} bytes in a binary frame")
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation("bad_json", f"{exc.msg} in {_snippet(frame)!r}") from None
    if not isinstance(obj, dict):
        raise ProtocolViolation("not_an_object", f"top level is {type(obj).__name__}")
    wire_type = obj.pop("type", None)
    if not isinstance(wire_type, str) or not wire_type:
        raise ProtocolViolation("missing_type", f"no string 'type' in {_snippet(frame)!r}")
    return Event(canonical_name(wire_type, dialect), obj)


def encode(event: Event, dialect: Dialect) -> str | None:
    """The JSON text for ``event`` on ``dialect``, or None if the event has no such name."""
    name = wire_name(event.type, dialect)
    if name is None:
        return None
    body: dict[str, Any] = {"type": name}
    body.update(event.data)
    return orjson.dumps(body).decode()
