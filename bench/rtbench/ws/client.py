"""A lean client WebSocket connection: wsproto for the upgrade, :mod:`.frame` after it.

Why not trio-websocket on the client: it runs a background reader task per connection and
hands every message over a memory channel to the task that asked for it, and every send is
an ``await`` that frames and masks in pure Python. At hundreds of sessions per core those
wakeups and copies are the cost. Here:

* sends never block: pre-built :class:`~rtbench.ws.frame.OutFrame` bytes go straight to the
  socket with a non-blocking write (plain TCP). Only if the kernel buffer is full — or on
  TLS, whose records trio's ``SSLStream`` must encrypt — do they queue for a flush task
  started on demand. ``on_sent(t)`` is told when the message left: the moment of the write
  on the direct path (stamped just before the syscall), the end of the flush otherwise;
* reads on plain TCP go through one :class:`~rtbench.ws.readhub.ReadHub` per trio run (one
  edge-triggered epoll for every connection, read in the hub's task with ``os.read``): no
  ``epoll_ctl`` re-arm and no task switch per message, which is what trio's own
  ``receive_some`` costs a reader task that wakes every 20 ms. Without a socket (TLS, an
  in-memory stream) :meth:`WsClient.receive_into` reads in the caller's task. Either way
  ``trio.current_time()`` is stamped right after the read, before any parsing, and each
  complete message goes with that stamp to a plain callback;
* after the upgrade, frames are parsed by :class:`~rtbench.ws.frame.FrameReader` (the
  simulator's parser: one buffer slice and a C unmask per frame) instead of wsproto's
  generator-driven frame protocol, and the few control frames we send are built here.

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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.frame_protocol import CloseReason as _Codes
from wsproto.utilities import RemoteProtocolError

from .frame import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    FrameError,
    FrameReader,
    MaskKeys,
    OutFrame,
    close_payload,
    frame_header,
    parse_close,
    xor_mask,
)
from .readhub import MAX_READS_PER_WAKEUP, ReadHub, make_hub

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
#: The most response-header bytes read before the upgrade is given up.
MAX_RESPONSE_HEAD = 64 * 1024
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
#: This trio run's read hub (see :func:`_run_hub`).
_HUB: trio.lowlevel.RunVar[ReadHub | None] = trio.lowlevel.RunVar("rtbench_client_read_hub")


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

    def __init__(self, stream: trio.abc.Stream, fd: int | None, max_message_bytes: int,
                 subprotocol: str | None, buffered: bytes = b"",
                 t_buffered: float | None = None) -> None:
        self._stream = stream
        self._fd = fd                      # plain TCP: read and write here directly; TLS: None
        self._nursery: trio.Nursery | None = None
        self._keys = MaskKeys()
        self._backlog: deque[tuple[bytes, OnSent | None]] = deque()
        self._flushing = False
        self._flushed = trio.Event()  # set when the running flush task ends
        self._broken = False  # the connection is lost: nothing more can be written
        self._failed = False  # the server broke the protocol: its bytes can no longer be parsed
        self._close_sent = False
        self._close_received = False
        self.subprotocol = subprotocol
        #: The TLS version negotiated (``TLSv1.3``), None on plain TCP.
        self.tls_version: str | None = None
        self.closed: CloseReason | None = None
        self._reader = FrameReader(masked=False, max_message_bytes=max_message_bytes)
        self._reader.feed(buffered)   # frames that arrived with the 101 response
        self._t_read = trio.current_time() if t_buffered is None else t_buffered
        self._parsing: Iterator[tuple[int, str | bytes]] | None = None  # a dispatch cut short
        self._handle: Callable[[str | bytes, float], object] | None = None
        self._hub: ReadHub | None = None      # while receive_into reads through the hub
        self._woken = trio.Event()            # the hub's callback has news for receive_into
        self._error: BaseException | None = None  # ``handle`` raised in the hub's task

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
        self._woken.set()

    def _send_control(self, opcode: int, payload: bytes) -> None:
        """A masked control frame: written even while closing (it may be the close frame)."""
        key = self._keys.next()
        with contextlib.suppress(ConnectionClosed):
            self._write(b"".join((frame_header(len(payload), opcode), key,
                                  xor_mask(payload, key))), None)

    # -- receiving ---------------------------------------------------------------------------

    async def receive_into(self, handle: Callable[[str | bytes, float], object]) -> CloseReason:
        """Read until the connection closes; ``handle(message, t)`` for every whole message.

        ``t`` is taken right after the bytes completing the message were read, before they
        are parsed. Returns the close reason (the peer's close frame, or 1006 when the TCP
        connection ended without one). ``handle`` must not block; on plain TCP it runs in the
        read hub's task, and what it raises is raised here.
        """
        self._handle = handle
        hub = _run_hub() if self._fd is not None else None
        try:
            if hub is not None and self._fd is not None:
                self._hub = hub
                hub.register(self._fd, self._readable)
                while self._readable():          # the 101's frames, and bytes that came
                    await trio.lowlevel.checkpoint()  # before the registration
                while self.closed is None and self._error is None:
                    await self._woken.wait()
                    self._woken = trio.Event()
            else:
                await self._receive_in_task()
        finally:
            self._handle = None
            self._unwatch()
        if self._error is not None:
            raise self._error
        assert self.closed is not None
        return self.closed

    async def _receive_in_task(self) -> None:
        """Without the hub: read in the caller's task until closed."""
        while True:
            while self._dispatch():                  # a slice's worth handled, more parsed: let
                await trio.lowlevel.checkpoint()     # the pacer and other readers in first
            if self.closed is not None:
                return
            try:
                data = await self._stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(f"receive failed: {exc}")
                return
            self._t_read = trio.current_time()
            if not data:
                self._lost("TCP connection closed without a close frame")
                return
            self._reader.feed(data)

    def _unwatch(self) -> None:
        if self._hub is not None and self._fd is not None:
            self._hub.forget(self._fd)
        self._hub = None

    def _readable(self) -> bool:
        """The hub's callback: parse and hand on what is buffered, read until the socket is
        drained (edge-triggered); True when it stopped early with more to do (see readhub).

        Never raises (it runs in the hub's task): what ``handle`` raises is kept for
        :meth:`receive_into`'s task.
        """
        try:
            return self._read_ready()
        except Exception as exc:
            self._error = exc
            self._woken.set()
            return False

    def _read_ready(self) -> bool:
        assert self._fd is not None
        reads, drained = 0, False
        while True:
            if self._dispatch():
                return True       # a slice's worth handled: the others first
            if self.closed is not None:
                self._woken.set()
                return False
            if drained:
                return False
            if reads == MAX_READS_PER_WAKEUP:
                return True
            try:
                data = os.read(self._fd, RECEIVE_BYTES)
            except BlockingIOError:
                return False      # drained: the next arrival is a new edge
            except OSError as exc:
                self._lost(f"receive failed: {exc.strerror or exc}")
                return False
            self._t_read = trio.current_time()
            reads += 1
            if not data:
                self._lost("TCP connection closed without a close frame")
                return False
            self._reader.feed(data)
            drained = len(data) < RECEIVE_BYTES

    def _dispatch(self) -> bool:
        """Hand the complete messages buffered so far to the handler; answer pings and closes.

        True when it stopped after :data:`DISPATCH_SLICE_S` with maybe more buffered: one
        64 KiB read can hold dozens of audio deltas, and handling them all in one step (decode,
        VAD) held the loop 1-3 ms while every session's next chunk waited. The parse is a
        generator; the next call goes on where this one stopped.
        """
        handle = self._handle
        if handle is None or self.closed is not None:
            return False
        events, self._parsing = self._parsing or self._reader.events(), None
        t = self._t_read
        started = time.perf_counter()
        try:
            for opcode, payload in events:
                if opcode <= OPCODE_BINARY:
                    handle(payload, t)
                    if self.closed is not None:
                        return False
                    if time.perf_counter() - started > DISPATCH_SLICE_S:
                        self._parsing = events
                        return True
                elif opcode == OPCODE_PING:
                    assert isinstance(payload, bytes)
                    self._send_control(OPCODE_PONG, payload)
                elif opcode == OPCODE_CLOSE:
                    assert isinstance(payload, bytes)
                    self._on_close(payload)
                    return False
        except FrameError as exc:
            # The server's bytes cannot be parsed from here (bad close code, bad UTF-8, an
            # oversized message, a protocol error): close with the code we owe and read no
            # reply (RFC 6455 §7.1.7).
            self._failed = True
            self._close_now(exc.code, exc.reason)
        return False

    def _on_close(self, payload: bytes) -> None:
        """The server's close (the reader checked it): echo its code, then we are closed."""
        self._close_received = True
        if not self._close_sent:
            self._close_sent = True
            self._send_control(OPCODE_CLOSE, payload[:2])
        if self.closed is None:
            self.closed = CloseReason(*parse_close(payload))
        self._woken.set()

    # -- closing -----------------------------------------------------------------------------

    def _close_now(self, code: int, reason: str | None = None) -> None:
        if self.closed is None:
            self.closed = CloseReason(code, reason or None)
        self._close_sent = True
        self._send_control(OPCODE_CLOSE, close_payload(code, reason))
        self._woken.set()

    async def aclose(self, code: int = 1000) -> None:
        """Close: our close frame after everything queued, the server's reply (unless it broke
        the protocol), drop the socket.

        Also after the peer closed first: the reply to its close may still be queued. All of
        it within :data:`CLOSE_WAIT_S`, shielded so that a cancelled caller still closes
        cleanly.
        """
        self._unwatch()
        try:
            with trio.move_on_after(CLOSE_WAIT_S) as scope:
                scope.shield = True
                if self.closed is None:
                    self._close_now(code)
                await self._flush_backlog()
                if self._close_sent and not (self._close_received or self._broken
                                             or self._failed):
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
        """Read, dropping messages, until the server's close frame (or the end, or garbage)."""
        self._parsing = None
        while True:
            try:
                if any(opcode == OPCODE_CLOSE for opcode, _ in self._reader.events()):
                    return
            except FrameError:
                return
            try:
                data = await self._stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            self._reader.feed(data)


def _run_hub() -> ReadHub | None:
    """The read hub of this trio run, started as a system task on first use (None without
    epoll). One per run, like the pacer is one per process: every connection's reads share
    one epoll and one task."""
    try:
        return _HUB.get()
    except LookupError:
        hub = make_hub()
        if hub is not None:
            trio.lowlevel.spawn_system_task(hub.run, name="rtbench.ws.client.ReadHub.run")
        _HUB.set(hub)
        return hub


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
        # Only the response head goes to wsproto: after a 101 the rest are frames, which
        # FrameReader parses (the first server event often shares the 101's segment).
        received = bytearray()
        while (end := received.find(b"\r\n\r\n")) < 0:
            if len(received) > MAX_RESPONSE_HEAD:
                raise UpgradeError(f"response headers over {MAX_RESPONSE_HEAD} bytes")
            data = await stream.receive_some(RECEIVE_BYTES)
            t = trio.current_time()
            if not data:
                raise UpgradeError("connection closed during the handshake")
            received += data
        head, rest = bytes(received[:end + 4]), bytes(received[end + 4:])
        status: int | None = None
        body = bytearray()
        try:
            ws.receive_data(head)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    client = WsClient(stream, fd, max_message_bytes, event.subprotocol,
                                      buffered=rest, t_buffered=t)
                    client.tls_version = tls_version
                    return client
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, b"")
            if status is None:
                raise UpgradeError("bad upgrade response: no status")
            data = rest
            while True:   # a refusal's body, for the service's error code
                if data:
                    ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, RejectData):
                        body += event.data
                        if len(body) > MAX_REFUSAL_BODY:   # an endless body is not read to the end
                            raise Rejected(status, bytes(body[:MAX_REFUSAL_BODY]))
                        if event.body_finished:
                            raise Rejected(status, bytes(body))
                data = _as_bytes(await stream.receive_some(RECEIVE_BYTES))
                if not data:
                    raise Rejected(status, bytes(body))
        except RemoteProtocolError as exc:   # garbage, a bad Sec-WebSocket-Accept, ...
            raise UpgradeError(f"bad upgrade response: {exc}") from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
