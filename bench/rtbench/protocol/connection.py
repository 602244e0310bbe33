"""Sans-IO Realtime connection: the wire half of either role (the simulator is the server).

Plain data in, plain data out, in the manner of h11/wsproto: ``send(event)`` returns the text to
put on the socket, ``receive(text)`` returns the Event it holds. The object checks direction
(a client never sends a server event and vice versa), stamps ``event_id`` on server events the
way the services do, and keeps the one piece of state both sides need: the session id. It
never touches a socket or a clock.

The simulator uses the server role. rtbench's own client reads servers through
:class:`~rtbench.protocol.conversation.Conversation` and a provider adapter
(:mod:`rtbench.protocol.adapters`), which own the client's script; the client role here is the
plain wire half, for clients scripted by hand (tests, referees).
"""

from __future__ import annotations

import os
import string
from enum import StrEnum

from .codec import ProtocolViolation, decode, encode
from .dialect import Dialect
from .events import CLIENT_EVENT_TYPES, Event, EventType

_ALPHABET = string.ascii_letters + string.digits
#: Random bytes -> base62 characters in one ``bytes.translate`` (the simulator stamps an id on
#: every event it sends; a ``secrets.choice`` per character was 7 % of its CPU under load).
_TO_BASE62 = bytes(ord(_ALPHABET[i % len(_ALPHABET)]) for i in range(256))


def new_id(prefix: str) -> str:
    """An id shaped like the services' (``sess_`` + 21 base62 characters, from os.urandom)."""
    return prefix + "_" + os.urandom(21).translate(_TO_BASE62).decode()


class Role(StrEnum):
    CLIENT = "client"
    SERVER = "server"


class Connection:
    """One side of one Realtime WebSocket conversation."""

    def __init__(self, role: Role, dialect: Dialect) -> None:
        self.role = role
        self.dialect = dialect
        self.session_id: str | None = None

    def send(self, event: Event) -> str | None:
        """Wire text for an outgoing event, or None when the dialect has no such event."""
        is_client_event = event.type in CLIENT_EVENT_TYPES
        if (self.role is Role.CLIENT) != is_client_event:
            raise ValueError(f"a {self.role} does not send {event.type!r}")
        if self.role is Role.SERVER:
            if "event_id" not in event.data:
                event = Event(event.type, {"event_id": new_id("event"), **event.data})
            self._track(event)
        return encode(event, self.dialect)

    def receive(self, frame: str | bytes) -> Event:
        """The event in one incoming message. Raises ProtocolViolation for a bad frame."""
        event = decode(frame, self.dialect)
        if self.role is Role.SERVER:
            if event.type not in CLIENT_EVENT_TYPES and event.known:
                raise ProtocolViolation("wrong_direction", f"server event {event.type!r} sent by client")
        else:
            self._track(event)
        return event

    def _track(self, event: Event) -> None:
        if event.type == EventType.SESSION_CREATED:
            session = event.get("session")
            if isinstance(session, dict) and isinstance(session.get("id"), str):
                self.session_id = session["id"]
