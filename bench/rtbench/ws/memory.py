"""An in-memory WebSocket pair: the real client and server code over a memory stream, no socket.

Why a byte-stream pair rather than a fake of either end: the client side keeps its real
:class:`~rtbench.ws.client.WsClient` (handshake, masking, close handshake, back-pressure path)
and the server side its real :class:`~rtbench.ws.server.WebSocketConnection` and handler, so a
test over this pair runs exactly the code a run does, minus the kernel. Bytes move between the
two ends without any time passing, so on ``trio.testing.MockClock(autojump_threshold=0)`` every
latency measured is the latency the server's logic scheduled, to the float.

A :class:`MemoryListener` stands where a TCP listener would: :meth:`MemoryListener.dial` (a
:data:`~rtbench.ws.client.Dial`, whatever host and port it is given) makes a stream pair, serves
the server end with the handler in the listener's nursery and returns the client end.
"""

from __future__ import annotations

import trio

from .client import RECEIVE_BYTES
from .server import HANDSHAKE_TIMEOUT_S, Handler, _serve_one  # serve_websocket's per-connection path


class MemoryListener:
    """Accepts in-memory connections for ``handler``; each is served in ``nursery``."""

    def __init__(self, handler: Handler, nursery: trio.Nursery) -> None:
        self._handler = handler
        self._nursery = nursery

    async def dial(self, host: str, port: int) -> trio.abc.Stream:
        """Connect: the client end of a new stream pair whose server end is being served."""
        # imported here: trio.testing takes ~0.1 s to import, and every simulator start
        # (which imports this module) would pay it; only in-memory runs dial
        from trio.testing import memory_stream_pair

        client, server = memory_stream_pair()
        # hub=None: the server end reads in its own task (there is no fd for an epoll hub)
        self._nursery.start_soon(_serve_one, self._handler, RECEIVE_BYTES, None, server,
                                 HANDSHAKE_TIMEOUT_S)
        return client


__all__ = ["MemoryListener"]
