"""The WebSocket edge: open a connection to a target, turn handshake failures into one line.

This module is the client's only way to a WebSocket (it uses :mod:`rtbench.ws.client`, the lean
client; the simulator serves with :mod:`rtbench.ws.server`). Secrets in headers never leave it:
errors carry the status and the server's message, not the request.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

import orjson
import trio

from ..config.auth import AuthError
from ..config.proxies import parse_proxy
from ..config.scenario import Target
from ..ws import client as wsclient
from ..ws.client import CloseReason, ConnectionClosed, Dial, WsClient
from ..ws.tunnel import ProxyRefused, via_proxy

#: Realtime events can be large (item retrieval with audio); do not cap below the 15 MiB append.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

#: TLS contexts by CA file (None: the system's trust store, or ``SSL_CERT_FILE`` /
#: ``SSL_CERT_DIR`` when set, which OpenSSL reads). Built once: loading a trust store costs
#: milliseconds and memory per context, and every session of a target trusts the same.
_contexts: dict[str | None, ssl.SSLContext] = {}
#: The TLS version the first wss:// session of each target negotiated, by target name.
_tls_versions: dict[str, str] = {}


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The shared client context that trusts ``ca_file`` only (None: the default trust)."""
    ctx = _contexts.get(ca_file)
    if ctx is None:
        ctx = _contexts[ca_file] = ssl.create_default_context(cafile=ca_file)
    return ctx


def tls_versions() -> dict[str, str]:
    """Target name -> TLS version of its first wss:// session in this process (no secrets)."""
    return dict(_tls_versions)


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
    target: Target, timeout_s: float, ssl_context: ssl.SSLContext | None = None, *,
    dial: Dial = trio.open_tcp_stream,
) -> AsyncIterator[WsClient]:
    """Open the target's WebSocket; raise HandshakeFailed with the server's reason on refusal.

    ``wss://`` verifies the server against the target's ``ca_file``, else the default trust
    (:func:`tls_context`; ``ssl_context`` replaces it). Only failures of the handshake itself
    are translated; errors from the body pass through. Leaving the block closes the connection.
    ``dial`` opens the byte stream under the WebSocket (TCP; an in-memory stream in tests, see
    ``ws.memory``); with ``target.proxy`` it reaches the proxy instead, which tunnels to the
    target (HTTP CONNECT, :mod:`rtbench.ws.tunnel`); TLS then runs end to end over the tunnel.
    """
    if urlsplit(target.url).scheme == "wss" and ssl_context is None:
        try:
            ssl_context = tls_context(target.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise HandshakeFailed(None, "tls_error",
                                  f"cannot load CA file {target.ca_file}: {exc}") from None
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
    via = ""
    if target.proxy is not None:
        proxy = parse_proxy(target.proxy, target.name)
        dial = via_proxy(proxy.host, proxy.port, proxy.authorization, dial)
        via = f" via proxy {proxy.display}"
    try:
        with trio.fail_after(timeout_s):
            ws = await wsclient.connect(target.url, headers=list(pairs), ssl_context=ssl_context,
                                        max_message_bytes=MAX_MESSAGE_BYTES, dial=dial)
    except wsclient.Rejected as exc:
        code, message = _describe_body(exc.body)
        raise HandshakeFailed(exc.status, code, message) from None
    except ProxyRefused as exc:  # not the target's status: no HTTP status of the upgrade
        raise HandshakeFailed(None, "proxy_refused", f"tunnel to {_host(target.url)} refused"
                              f"{via}: {exc}") from None
    except trio.TooSlowError:
        raise HandshakeFailed(None, "connect_timeout",
                              f"no handshake within {timeout_s:g} s") from None
    except wsclient.UpgradeError as exc:
        raise HandshakeFailed(None, "handshake_error", f"{exc}{via}") from None
    except OSError as exc:
        raise HandshakeFailed(None, "connect_error", f"cannot connect to {_host(target.url)}"
                              f"{via}: {exc.strerror or exc}") from None
    except trio.BrokenResourceError as exc:  # TLS refused (bad certificate, ...)
        cause = exc.__cause__ or exc
        raise HandshakeFailed(None, "tls_error", f"TLS with {_host(target.url)} failed: "
                              f"{cause}") from None
    if ws.tls_version is not None and target.name not in _tls_versions:
        _tls_versions[target.name] = ws.tls_version
    try:
        async with trio.open_nursery() as nursery:  # where a flush task runs if sends back up
            ws.attach(nursery)
            try:
                yield ws
            finally:
                await ws.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the nursery wrapped what the caller's block raised
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


#: How a session opens its target's WebSocket: ``connect(target, timeout_s)`` is an async
#: context manager around the open connection that raises :class:`HandshakeFailed` on refusal.
#: The product uses :func:`open_connection` over TCP; tests pass it with an in-memory ``dial``
#: so sessions run against the simulator on a mock clock (a seam, not a second transport).
Connect = Callable[[Target, float], AbstractAsyncContextManager[WsClient]]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


__all__ = ["MAX_MESSAGE_BYTES", "CloseReason", "Connect", "ConnectionClosed", "HandshakeFailed",
           "WsClient", "open_connection", "tls_context", "tls_versions"]
