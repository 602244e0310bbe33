"""The WebSocket edge: open a connection to a target, turn handshake failures into one line.

Only this module (and the simulator server) imports trio-websocket. Secrets in headers never
leave it: errors carry the status and the server's message, not the request.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import orjson
import trio
import trio_websocket

from .auth import AuthError
from .config import Target

#: Realtime events can be large (item retrieval with audio); do not cap below the 15 MiB append.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class HandshakeFailed(Exception):
    """The server refused the WebSocket upgrade (HTTP status) or could not be reached."""

    def __init__(self, status: int | None, code: str | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message


def _describe_body(body: bytes | None) -> tuple[str | None, str]:
    """The ``error.code`` and ``error.message`` of an OpenAI/Azure error body, if it has them."""
    if not body:
        return None, "(empty body)"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:200].decode("utf-8", "replace")
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        return (None if code is None else str(code)), str(err.get("message", ""))[:300]
    return None, body[:200].decode("utf-8", "replace")


@asynccontextmanager
async def open_connection(
    target: Target, timeout_s: float
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """Open the target's WebSocket; raise HandshakeFailed with the server's reason on refusal.

    Only failures of the handshake itself are translated; errors from the body pass through.
    """
    scheme = urlsplit(target.url).scheme
    ssl_context = ssl.create_default_context() if scheme == "wss" else None
    pairs = target.headers
    if target.auth is not None:
        try:
            with trio.fail_after(timeout_s):  # a hung token endpoint counts as a connect timeout
                pairs += await target.auth.headers()
        except AuthError as exc:
            raise HandshakeFailed(None, "auth_error", str(exc)) from None
        except trio.TooSlowError:
            raise HandshakeFailed(None, "auth_timeout",
                                  f"no credentials within {timeout_s:g} s") from None
    headers = [(k.encode(), v.encode()) for k, v in pairs]
    connected = False
    try:
        async with trio_websocket.open_websocket_url(
            target.url,
            ssl_context,
            extra_headers=headers,
            max_message_size=MAX_MESSAGE_BYTES,
            connect_timeout=timeout_s,
            disconnect_timeout=2,
        ) as ws:
            connected = True
            yield ws
    except trio_websocket.ConnectionRejected as exc:
        if connected:
            raise
        code, message = _describe_body(exc.body)
        raise HandshakeFailed(exc.status_code, code, message) from None
    except trio_websocket.ConnectionTimeout:
        if connected:
            raise
        raise HandshakeFailed(None, "connect_timeout",
                              f"no handshake within {timeout_s:g} s") from None
    except trio_websocket.HandshakeError as exc:
        if connected:
            raise
        raise HandshakeFailed(None, "handshake_error", type(exc).__name__) from None
    except OSError as exc:
        if connected:
            raise
        raise HandshakeFailed(None, "connect_error", f"cannot connect to {_host(target.url)}: "
                              f"{exc.strerror or exc}") from None


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
