"""The provider seam: what one speech-to-speech wire protocol must give rtbench, and a registry.

Why: the conversation script (``protocol.conversation``) and the turn timing (``protocol.turn``)
are written once, against rtbench's *normalized* turn events: the canonical (GA) Realtime
event names of :class:`~rtbench.protocol.events.EventType` with the fields protocol reference
§4.4 gives them. A provider is then one adapter (this interface, sans-IO like the rest of the
layer: wire messages in, normalized events out; rtbench's actions in, wire messages out) plus a
simulator twin in ``sim/`` that speaks the same wire protocol. OpenAI GA and OpenAI beta/preview
(reference §2) are the first two adapters (``adapters.openai``); Gemini Live and OpenAI Live
(providers.md §4, §5) are meant to be the next, each with its own wire names mapped onto the
same normalized events (``serverContent.modelTurn`` audio onto ``response.output_audio.delta``,
``turnComplete`` onto ``response.done``, and so on).

An adapter instance belongs to one connection: it may keep state (a provider without response
ids synthesizes them per model turn), so the registry holds factories, not instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..events import ErrorInfo, Event
from ..session_config import SessionConfig


class Adapter(Protocol):
    """One provider's wire protocol on the client side of one connection, without I/O."""

    #: Registry key (also how reports name the protocol).
    name: str

    def decode(self, frame: str | bytes) -> Sequence[Event]:
        """The normalized events one received message holds (several for providers that pack
        them, none for messages rtbench has no use for).

        Raises :class:`~rtbench.protocol.codec.ProtocolViolation` for a message that is not a
        valid one of this protocol (bad JSON, a mistyped field rtbench reads); callers record it
        as a protocol error, never crash (reference §4.2).
        """
        ...

    def encode(self, event: Event) -> str | None:
        """Wire text for a normalized client event, or None when this protocol has no such
        message (the action is then simply not sent)."""
        ...

    def session_update(self, config: SessionConfig) -> Event:
        """The client event that configures the session (reference §3.1 step 3)."""
        ...

    def explain_setup_error(self, info: ErrorInfo) -> str | None:
        """A plain-words hint for a set-up error that says what the user got wrong, or None."""
        ...


_FACTORIES: dict[str, Callable[[], Adapter]] = {}


def register(name: str, factory: Callable[[], Adapter]) -> None:
    """Make ``create(name)`` build adapters with ``factory``; a name is registered once."""
    if name in _FACTORIES:
        raise ValueError(f"adapter {name!r} is already registered")
    _FACTORIES[name] = factory


def create(name: str) -> Adapter:
    """A fresh adapter for one connection. Raises KeyError naming the known adapters."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"no protocol adapter {name!r} (known: {', '.join(names())})") from None
    return factory()


def names() -> list[str]:
    """The registered adapter names, sorted."""
    return sorted(_FACTORIES)
