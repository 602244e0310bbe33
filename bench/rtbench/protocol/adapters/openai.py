"""OpenAI Realtime, GA and beta/preview, as the first two adapters of the provider seam.

The generations differ only in data (reference §2: the event-name table of §2.2 and the session
shapes of §2.1), and that data stays where the simulator also reads it, in ``protocol.dialect``;
this module only binds one :class:`~rtbench.protocol.dialect.Dialect` to the adapter interface.
Normalized events are GA events, so the GA adapter renames nothing and the beta one renames
through ``dialect.BETA_TO_GA``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..codec import decode, encode
from ..diagnose import explain_session_error
from ..dialect import Dialect, session_to_wire
from ..events import ErrorInfo, Event, EventType
from ..session_config import SessionConfig
from ..validate import check_server_event
from .base import Adapter, create, register

#: Adapter name for each wire generation (design.md: ``openai_ga``, ``openai_beta``).
ADAPTER_FOR_DIALECT: dict[Dialect, str] = {Dialect.GA: "openai_ga", Dialect.BETA: "openai_beta"}


class OpenAIRealtime:
    """One OpenAI/Azure Realtime connection of one generation. Stateless: one event a frame."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = ADAPTER_FOR_DIALECT[dialect]

    def decode(self, frame: str | bytes) -> Sequence[Event]:
        """The frame's event under its canonical name, with the fields rtbench reads checked
        (reference §4.4: every server event has ``event_id``; the table in ``validate``)."""
        event = decode(frame, self.dialect)
        check_server_event(event)  # an unknown type is kept verbatim: only event_id is checked
        return (event,)

    def encode(self, event: Event) -> str | None:
        return encode(event, self.dialect)

    def session_update(self, config: SessionConfig) -> Event:
        return Event(EventType.SESSION_UPDATE, {"session": session_to_wire(config, self.dialect)})

    def explain_setup_error(self, info: ErrorInfo) -> str | None:
        return explain_session_error(info, self.dialect)


def for_dialect(dialect: Dialect) -> Adapter:
    """A fresh adapter for a target's wire generation (``Target.dialect``)."""
    return create(ADAPTER_FOR_DIALECT[dialect])


register("openai_ga", lambda: OpenAIRealtime(Dialect.GA))
register("openai_beta", lambda: OpenAIRealtime(Dialect.BETA))
