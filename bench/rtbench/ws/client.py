"""A lean client WebSocket connection: wsproto for the protocol, one trio task per connection.

Why not trio-websocket on the client: it runs a background reader task per connection and
hands every message over a memory channel to the task that asked for it, and every send is
an ``await`` that frames and masks in pure Python. At hundreds of sessions per core those
wakeups and copies are the cost. Here:

* sends never block: pre-built :class:`~rtbench.ws.frame.OutFrame` bytes go straight to the
  socket with a non-blocking write (plain TCP). Only if the kernel buffer is full — or on
  TLS, whose records trio's ``SSLStream`` must encrypt — do they queue for a flush task
  started on demand. ``on_sent(t)`` is told when the message left: the moment of the write
  on the direct path (stamped just before the syscall), the end of the flush otherwise;
* the caller's own task reads: :meth:`WsClient.receive_into` stamps ``trio.current_time()``
  right after ``receive_some`` returns, before any parsing, and hands each complete message
  with that stamp to a plain callback.

Closing: ``closed`` (the close reason) is set the moment the connection starts to end — our
close frame queued, the peer's close read, or the connection lost — and from then on the caller
can send no more. Frames already queued (on TLS: every frame) are still written, the close
frame last; only a lost connection drops them. :meth:`WsClient.aclose` waits for that flush on
an event, then for the peer's close reply, then drops the socket.

Handshake refusals keep the server's status and body (:class:`Rejected`) so the transport can
report the service's error code.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason as _Codes
from wsproto.utilities import RemoteProtocolError

from .frame import MaskKeys, OutFrame

#: Read up to this much per receive: several frames per wakeup under load. Python allocates the
#: whole size for every read; 64 KiB stays below glibc's mmap threshold (128 KiB), and the
#: client's RSS at 500 sessions fell from 170 to 150 MiB against 256 KiB. Shared by the
#: simulator's server.
RECEIVE_BYTES = 64 * 1024
#: The most of a refusal's body kept: enough for any service's error JSON, and a server that
#: streams an endless body cannot grow the client without bound.
MAX_REFUSAL_BODY = 64 * 1024
#: The longest one reader step hands messages to the session before letting others run.
DISPATCH_SLICE_S = 0.0005
#: How long our close waits for the server's close frame before dropping the socket.
CLOSE_WAIT_S = 1.0

OnSent = Callable[[float], None]
#: Opens the byte stream under a connection to ``(host, port)``: TCP by default, or an
#: in-memory stream (:mod:`rtbench.ws.memory`) so tests need no socket and can mock the clock.
Dial = Callable[[str, int], Awaitable[trio.abc.Stream]]


@dataclass(frozen=True, slots=True)
class CloseReason:
    """Why the connection ended: the close code, the peer's reason text, the code's name."""

    code: int
    reason: str | None = None

    @property
    def name(self) -> str:
        try:
            return _Codes(self.code).name
        except ValueError:
            return f"CLOSE_{self.code}"


ABNORMAL = 1006


class ConnectionClosed(Exception):
    def __init__(self, reason: CloseReason) -> None:
        super().__init__(f"{reason.code} {reason.name}: {reason.reason or ''}".rstrip(": "))
        self.reason = reason


class UpgradeError(Exception):
    """The upgrade did not complete (bad response, connection lost mid-handshake); the client
    layer turns it into ``client.transport.HandshakeFailed`` with the target's name."""


class Rejected(UpgradeError):
    """The server answered the upgrade with an HTTP status instead of 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class WsClient:
    """One open client WebSocket. Create with :func:`connect`; use inside its nursery."""

    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, fd: int | None,
                 max_message_bytes: int, subprotocol: str | None) -> None:
        self._stream = stream
        self._ws = ws
        self._fd = fd                      # plain TCP: write here directly; TLS: None
        self._nursery: trio.Nursery | None = None
        self._max = max_message_bytes
        self._keys = MaskKeys()
        self._backlog: deque[tuple[bytes, OnSent | None]] = deque()
        self._flushing = False
        self._flushed = trio.Event()  # set when the running flush task ends
        self._broken = False  # the connection is lost: nothing more can be written
        self._failed = False  # the server broke the protocol: its bytes can no longer be parsed
        self.subprotocol = subprotocol
        #: The TLS version negotiated (``TLSv1.3``), None on plain TCP.
        self.tls_version: str | None = None
        self.closed: CloseReason | None = None
        self._t_buffered = trio.current_time()
        self._parts: list[str | bytes] = []   # a fragmented message so far
        self._size = 0

    def attach(self, nursery: trio.Nursery) -> None:
        """Where to run the flush task when sends back up (must outlive the connection)."""
        self._nursery = nursery

    # -- sending -----------------------------------------------------------------------------

    def send_frame(self, frame: OutFrame, on_sent: OnSent | None = None) -> None:
        """Mask and send one prepared text message now; ``on_sent(t)`` at send completion.

        Never blocks. Raises ConnectionClosed if the connection is closing or closed (or
        just became so).
        """
        if self.closed is not None:
            raise ConnectionClosed(self.closed)
        self._write(frame.masked(self._keys.next()), on_sent)

    def send_text(self, text: str, on_sent: OnSent | None = None) -> None:
        self.send_frame(OutFrame(text), on_sent)

    def _write(self, data: bytes, on_sent: OnSent | None) -> None:
        """Write now or queue behind what is queued; ConnectionClosed if the connection is lost."""
        if self._broken:
            raise ConnectionClosed(self.closed or CloseReason(ABNORMAL))
        if not self._backlog and self._fd is not None:
            # Stamped just before the write: if the OS preempts us around the syscall, the send
            # time is early and a latency from it long, never short (a stamp after the write
            # once made a 2,000 ms injected TTFA read 1,995.6 ms on a loaded machine).
            t = trio.current_time()
            try:
                n = os.write(self._fd, data)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                self._lost(f"send failed: {exc.strerror or exc}")
                raise ConnectionClosed(self.closed or CloseReason(ABNORMAL)) from None
            if n == len(data):
                if on_sent is not None:
                    on_sent(t)
                return
            data = data[n:]
        self._backlog.append((data, on_sent))
        if not self._flushing:
            if self._nursery is None:
                raise RuntimeError("WsClient.attach(nursery) before sending")
            self._flushing = True
            self._flushed = trio.Event()
            self._nursery.start_soon(self._flush)

    async def _flush(self) -> None:
        """Drain the backlog in order (socket buffer full, or TLS), a close frame included."""
        try:
            await self._drain()
        finally:
            self._flushing = False
            self._flushed.set()

    async def _drain(self) -> None:
        try:
            while self._backlog and not self._broken:
                data, on_sent = self._backlog[0]
                await self._stream.send_all(data)
                self._backlog.popleft()
                if on_sent is not None:
                    on_sent(trio.current_time())
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lost(f"send failed: {exc}")

    def _lost(self, why: str) -> None:
        if self.closed is None:
            self.closed = CloseReason(ABNORMAL, why)
        self._broken = True
        self._backlog.clear()

    # -- receiving ---------------------------------------------------------------------------

    async def receive_into(self, handle: Callable[[str | bytes, float], object]) -> CloseReason:
        """Read until the connection closes; ``handle(message, t)`` for every whole message.

        ``t`` is taken right after the bytes completing the message were read, before they
        are parsed. Returns the close reason (the peer's close frame, or 1006 when the TCP
        connection ended without one).
        """
        ws = self._ws
        t = self._t_buffered  # frames that arrived with the 101 response
        while True:
            while self._dispatch(handle, t):     # a slice's worth handled, more parsed: let
                await trio.lowlevel.checkpoint()  # the pacer and other readers in first
            if self.closed is not None:
                break
            try:
                data = await self._stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(f"receive failed: {exc}")
                break
            t = trio.current_time()
            if not data:
                self._lost("TCP connection closed without a close frame")
                break
            ws.receive_data(_as_bytes(data))
        assert self.closed is not None
        return self.closed

    def _dispatch(self, handle: Callable[[str | bytes, float], object], t: float) -> bool:
        """Hand the complete messages parsed so far to ``handle``; answer pings and closes.

        True when it stopped after :data:`DISPATCH_SLICE_S` with more buffered: one 64 KiB read
        can hold dozens of audio deltas, and handling them all in one step (decode, VAD) held
        the loop 1-3 ms while every session's next chunk waited. wsproto parses lazily, so
        what is left stays in its buffer for the next call."""
        ws = self._ws
        started = time.perf_counter()
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                data = event.data if isinstance(event.data, str) else _as_bytes(event.data)
                self._size += len(data)
                if self._size > self._max:
                    self._close_now(1009, f"message over {self._max} bytes")
                    return False
                if not event.message_finished:
                    self._parts.append(data)
                    continue
                message: str | bytes = data
                if self._parts:
                    self._parts.append(data)
                    message = ("".join(cast(list[str], self._parts))
                               if isinstance(message, str)
                               else b"".join(cast(list[bytes], self._parts)))
                    self._parts = []
                self._size = 0
                handle(message, t)
                if self.closed is not None:
                    return False
                if time.perf_counter() - started > DISPATCH_SLICE_S:
                    return True     # maybe more parsed: the next call goes on from there
            elif isinstance(event, Ping):
                self._send_raw(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if ws.state is ConnectionState.OPEN:
                    # wsproto could not parse the server's frames (bad close code, bad UTF-8,
                    # a protocol error): it reports that as a close with the code we owe.
                    # No reply can be parsed after that: fail the connection (RFC 6455 §7.1.7).
                    self._failed = True
                    self._close_now(event.code, event.reason)
                    return False
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    self._send_raw(ws.send(event.response()))
                self.closed = CloseReason(event.code, event.reason or None)
                return False
        return False

    def _send_raw(self, data: bytes) -> None:
        """A control frame: written even while closing (it may be the close frame itself)."""
        with contextlib.suppress(ConnectionClosed):
            self._write(data, None)

    # -- closing -----------------------------------------------------------------------------

    def _close_now(self, code: int, reason: str | None = None) -> None:
        self.closed = CloseReason(code, reason or None)
        self._send_raw(self._ws.send(CloseConnection(code=code, reason=reason)))

    async def aclose(self, code: int = 1000) -> None:
        """Close: our close frame after everything queued, the server's reply (unless it broke
        the protocol), drop the socket.

        Also after the peer closed first: the reply to its close may still be queued. All of
        it within :data:`CLOSE_WAIT_S`, shielded so that a cancelled caller still closes
        cleanly.
        """
        try:
            with trio.move_on_after(CLOSE_WAIT_S) as scope:
                scope.shield = True
                if self.closed is None and self._ws.state is ConnectionState.OPEN:
                    self._close_now(code)
                await self._flush_backlog()
                if self._ws.state is ConnectionState.LOCAL_CLOSING and not (
                        self._broken or self._failed):
                    await self._await_close_reply()
        finally:
            await trio.aclose_forcefully(self._stream)

    async def _flush_backlog(self) -> None:
        """Wait for the flush task; write what it left (it was cancelled with its nursery)."""
        if self._flushing:
            await self._flushed.wait()
        if self._backlog and not self._flushing:
            await self._drain()

    async def _await_close_reply(self) -> None:
        while True:
            try:
                data = await self._stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            self._ws.receive_data(_as_bytes(data))
            if any(isinstance(e, CloseConnection) for e in self._ws.events()):
                return


def _as_bytes(data: bytes | bytearray) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


async def connect(url: str, *, headers: list[tuple[str, str]], ssl_context: ssl.SSLContext | None,
                  max_message_bytes: int, subprotocols: tuple[str, ...] = (),
                  dial: Dial = trio.open_tcp_stream) -> WsClient:
    """TCP (+ TLS for wss://) and the upgrade; raises Rejected, UpgradeError or OSError.

    ``dial`` opens the stream; sends go straight to the file descriptor only on a TCP socket.

    The caller bounds the time (``trio.fail_after``) and then gives the client a nursery
    (:meth:`WsClient.attach`) in which a flush task may run for the connection's lifetime.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UpgradeError(f"not a WebSocket URL: {parts.scheme}://")
    port = parts.port or (443 if secure else 80)
    host = parts.hostname
    tcp = await dial(host, port)
    stream: trio.abc.Stream = tcp
    tls_version: str | None = None
    fd: int | None = tcp.socket.fileno() if isinstance(tcp, trio.SocketStream) else None
    try:
        if secure:
            stream = trio.SSLStream(tcp, ssl_context or ssl.create_default_context(),
                                    server_hostname=host, https_compatible=True)
            await stream.do_handshake()
            fd = None
            tls_version = stream.version()
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(
            host=host_header, target=resource, subprotocols=list(subprotocols),
            extra_headers=[(k.encode(), v.encode()) for k, v in headers])))
        status: int | None = None
        body = bytearray()
        while True:
            data = await stream.receive_some(RECEIVE_BYTES)
            t = trio.current_time()
            if not data:
                if status is not None:
                    raise Rejected(status, bytes(body))
                raise UpgradeError("connection closed during the handshake")
            try:
                ws.receive_data(_as_bytes(data))
                # Iterated lazily: frames that came with the 101 must stay buffered in ``ws``
                # for the reader (a list() here ate the session.created that shared a segment).
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        client = WsClient(stream, ws, fd, max_message_bytes, event.subprotocol)
                        client._t_buffered = t
                        client.tls_version = tls_version
                        return client
                    if isinstance(event, RejectConnection):
                        status = event.status_code
                        if not event.has_body:
                            raise Rejected(status, b"")
                    elif isinstance(event, RejectData):
                        body += event.data
                        if len(body) > MAX_REFUSAL_BODY:   # an endless body is not read to the end
                            assert status is not None
                            raise Rejected(status, bytes(body[:MAX_REFUSAL_BODY]))
                        if event.body_finished:
                            assert status is not None
                            raise Rejected(status, bytes(body))
            except RemoteProtocolError as exc:   # garbage, a bad Sec-WebSocket-Accept, ...
                raise UpgradeError(f"bad upgrade response: {exc}") from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
