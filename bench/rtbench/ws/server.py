"""A lean WebSocket server for the simulator: trio-websocket's server API, without its reader task.

Why: profiled at 200 sessions × 20 ms chunks, trio-websocket's per-connection reader task
(parse, then hand each message over a memory channel to the task that awaits it) took about
half of the simulator's core, and wsproto's frame parser most of the rest. Here wsproto only
does the upgrade; after it, :meth:`WebSocketConnection.get_message` reads the socket in the
caller's own task and parses frames with :class:`~rtbench.ws.frame.FrameReader`, so a client
frame costs one wakeup and a slice-and-unmask instead of two wakeups, a channel hop and a
generator-driven parse.

Every accepted socket is watched by one shared :class:`~rtbench.ws.readhub.ReadHub` (one
edge-triggered epoll for the whole server, instead of trio re-arming its epoll per read), which
reads it in its own task and parses what came: with :meth:`WebSocketConnection.deliver` each
message goes straight to a callback (no task switch per message); with ``get_message`` it is
queued for the waiting task. A message that fits the socket buffer is written at once with
``os.write`` (no lock, no checkpoints); a partial write falls back to trio's ``send_all`` under
the send lock.

It implements the subset of trio-websocket's server API the simulator uses, with the same
names (``serve_websocket``, ``WebSocketRequest.accept/reject``, ``get_message``,
``send_message``, ``aclose``, ``ConnectionClosed``), plus :meth:`WebSocketConnection.abort`
(drop TCP without a close frame) and :meth:`WebSocketConnection.deliver`, so the simulator's
I/O edge reads the same.
"""

from __future__ import annotations

import contextlib
import os
import resource
import ssl
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request

from .client import ABNORMAL, RECEIVE_BYTES, CloseReason, ConnectionClosed
from .frame import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    FrameError,
    FrameReader,
    close_payload,
    parse_close,
    server_frame,
)
from .readhub import MAX_READS_PER_WAKEUP, ReadHub, make_hub

#: Time a client has to complete TCP + TLS + the upgrade request (``rtbench serve
#: --handshake-timeout``): idle connections that never ask are closed, not kept.
HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_WAIT_S = 1.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class WebSocketServer:
    listeners: list[trio.SocketListener]

    @property
    def port(self) -> int:
        return int(self.listeners[0].socket.getsockname()[1])


class WebSocketConnection:
    """An accepted connection. One task receives (:meth:`get_message` or :meth:`deliver`)
    while another may send."""

    def __init__(self, stream: trio.abc.Stream, path: str, receive_bytes: int,
                 hub: ReadHub | None = None) -> None:
        self._stream = stream
        self._sock = getattr(stream, "socket", None)  # a trio socket for plain TCP streams
        self._hub = hub if self._sock is not None else None
        self.path = path
        self._receive_bytes = receive_bytes
        self._send_lock = trio.StrictFIFOLock()
        # Read, not yet handled by the receiving task, in arrival order: messages (while no
        # deliver() callback takes them at once) and ping/close frames. One queue, so that a
        # ping read before a message is answered before get_message returns that message.
        self._inbox: deque[tuple[int, str | bytes]] = deque()
        self._on_message: Callable[[str | bytes], None] | None = None  # set by deliver()
        self._failure: BaseException | None = None  # a bad frame, or a deliver() callback's error
        self._attention = trio.Event()  # set when the receiving task has something to do
        self._read_done = False  # a close frame, a bad frame or EOF was read: read no more
        self._reader = FrameReader(masked=True, max_message_bytes=MAX_MESSAGE_BYTES)
        self._we_closed = False
        self._closed: CloseReason | None = None
        self._close_done = trio.Event()  # the close handshake is over (or the connection lost)
        if self._hub is not None:
            assert self._sock is not None
            self._hub.register(self._sock.fileno(), self._readable)
            self._readable()  # bytes may have arrived before the socket was registered

    @property
    def closed(self) -> CloseReason | None:
        return self._closed

    async def get_message(self) -> str | bytes:
        """The next whole message; ConnectionClosed once the connection is closed.

        Ping and close frames read before that message are answered first (arrival order).
        """
        while True:
            while self._inbox:
                opcode, payload = self._inbox.popleft()
                if opcode <= OPCODE_BINARY:
                    return payload
                await self._on_control(opcode, payload)
            await self._next_input()

    async def deliver(self, on_message: Callable[[str | bytes], None]) -> None:
        """Hand every message to ``on_message`` as it is read, until the connection closes.

        With the shared hub, ``on_message`` runs synchronously in the hub's task the moment the
        bytes are read: no task switch per message. It must not block; an exception it raises
        is re-raised here, in the caller's task. Ping and close frames are answered here.
        """
        self._on_message = on_message
        try:
            while True:
                while self._inbox:  # what was read before, in order; then only control frames
                    opcode, payload = self._inbox.popleft()
                    if opcode <= OPCODE_BINARY:
                        on_message(payload)
                    else:
                        await self._on_control(opcode, payload)
                await self._next_input()
        except ConnectionClosed:
            return
        finally:
            self._on_message = None

    async def _on_control(self, opcode: int, payload: str | bytes) -> None:
        assert isinstance(payload, bytes)
        if opcode == OPCODE_CLOSE:  # the client's close, or its reply to ours
            await self._on_close(payload)
        elif opcode == OPCODE_PING and self._closed is None:
            await self._send_bytes(server_frame(OPCODE_PONG, payload))

    async def _next_input(self) -> None:
        """Deal with a failure the reader left for this task, then wait for more input;
        ConnectionClosed once closed.

        While our own close waits for the client's reply this task keeps reading: the reply
        is what ends that wait.
        """
        if self._failure is not None:
            failure, self._failure = self._failure, None
            if not isinstance(failure, FrameError):
                raise failure
            await self.aclose(failure.code, failure.reason)
        if self._closed is not None and self._close_done.is_set():
            raise ConnectionClosed(self._closed)
        if self._hub is None:
            self._take(await self._receive())
            return
        await self._attention.wait()
        self._attention = trio.Event()

    async def _receive(self) -> bytes:
        """Without the hub: the next bytes from the client, b"" once the connection is gone."""
        try:
            return bytes(await self._stream.receive_some(self._receive_bytes))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    def _readable(self) -> bool:
        """The hub's callback: read until drained (edge-triggered), then take what came; True
        when it stopped at ``MAX_READS_PER_WAKEUP`` reads with more waiting (see readhub).

        Why ``os.read`` on the fd: trio's ``receive_some`` tries a read, which for a connection
        that sends every 20 ms nearly always fails with EAGAIN (a raised exception), and
        checkpoints around it; the profiled simulator spent a third of its core there.
        """
        assert self._sock is not None
        for _ in range(MAX_READS_PER_WAKEUP):
            if self._read_done:
                return False
            fd = self._sock.fileno()
            try:
                data = os.read(fd, self._receive_bytes) if fd >= 0 else b""
            except BlockingIOError:
                return False
            except OSError:
                data = b""
            self._take(data)
            if 0 < len(data) < self._receive_bytes:
                return False  # drained: the next arrival is a new edge
        return not self._read_done

    def _take(self, data: bytes) -> None:
        """Parse bytes read: messages to the callback (or the queue), the rest to the task."""
        if not data:
            self._read_done = True
            self._lost()
            self._attention.set()
            return
        self._reader.feed(data)
        on_message = self._on_message
        try:
            for opcode, payload in self._reader.events():
                if opcode > OPCODE_BINARY:
                    self._inbox.append((opcode, payload))
                    self._attention.set()
                    if opcode == OPCODE_CLOSE:
                        self._read_done = True  # nothing after a close frame counts
                        return
                elif on_message is not None and not self._inbox:
                    on_message(payload)
                else:  # no callback, or a ping before it is not answered yet: keep the order
                    self._inbox.append((opcode, payload))
                    self._attention.set()
        except Exception as exc:  # a bad frame, or the callback's bug: the task deals with it
            self._read_done = True
            self._failure = exc
            self._attention.set()

    async def _on_close(self, payload: bytes) -> None:
        """A valid close frame (the reader checked it): answer it with its code (an empty one
        with an empty one), then close TCP, the server's side (RFC 6455 §7.1.1)."""
        if not self._we_closed:
            self._we_closed = True
            with contextlib.suppress(ConnectionClosed):
                await self._send_bytes(server_frame(OPCODE_CLOSE, payload[:2]))
        if self._closed is None:
            self._closed = CloseReason(*parse_close(payload))
        self._close_done.set()
        await self.abort()

    def _lost(self) -> None:
        if self._closed is None:
            self._closed = CloseReason(ABNORMAL, None)
        self._close_done.set()

    async def _send_bytes(self, data: bytes) -> None:
        sock = self._sock
        if sock is not None and not self._send_lock.locked():
            fd = sock.fileno()
            try:
                n = os.write(fd, data) if fd >= 0 else 0
            except BlockingIOError:
                n = 0
            except OSError:
                n = -1
            if n == len(data):
                return
            if n < 0 or fd < 0:
                self._lost()
                raise ConnectionClosed(self._closed or CloseReason(ABNORMAL))
            data = data[n:]
        try:
            async with self._send_lock:
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._lost()
            raise ConnectionClosed(self._closed or CloseReason(ABNORMAL)) from None

    async def send_message(self, message: str | bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        await self._send_bytes(server_frame(OPCODE_TEXT, message.encode()) if isinstance(
            message, str) else server_frame(OPCODE_BINARY, message))

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame, wait briefly for the client's reply (read by the receiving
        task), then close TCP.

        After a protocol error nothing more is read (the stream cannot be parsed), so there
        is no reply to wait for: the connection is failed at once (RFC 6455 §7.1.7).
        """
        if self._closed is None and not self._we_closed:
            self._closed = CloseReason(code, reason)
            self._we_closed = True
            try:
                # Shielded: from here the receiving task sees the connection closed and its
                # caller may cancel this one (the simulator does); a send that waits (full
                # buffer, or a stream without a socket) would then lose the close frame and
                # the client would record 1006 instead of this code. Bounded like the wait.
                with trio.move_on_after(CLOSE_WAIT_S) as sending:
                    sending.shield = True
                    await self._send_bytes(server_frame(OPCODE_CLOSE, close_payload(code, reason)))
                if not self._read_done:
                    with trio.move_on_after(CLOSE_WAIT_S):
                        await self._close_done.wait()
            except ConnectionClosed:
                pass
        await self.abort()

    async def abort(self) -> None:
        """Close TCP now, with no close frame: the peer sees an abnormal closure (1006)."""
        if self._hub is not None and self._sock is not None and self._sock.fileno() >= 0:
            self._hub.forget(self._sock.fileno())
        self._lost()
        self._attention.set()  # a receiving task waiting for input sees the connection closed
        await trio.aclose_forcefully(self._stream)


class WebSocketRequest:
    """A client's upgrade request: inspect it, then accept or reject."""

    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, event: Request,
                 receive_bytes: int, hub: ReadHub | None = None) -> None:
        self._stream = stream
        self._ws = ws
        self._event = event
        self._receive_bytes = receive_bytes
        self._hub = hub
        self.connection: WebSocketConnection | None = None  # once accepted

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self._event.extra_headers)

    @property
    def path(self) -> str:
        return self._event.target

    @property
    def proposed_subprotocols(self) -> tuple[str, ...]:
        return tuple(self._event.subprotocols)

    async def accept(self, *, subprotocol: str | None = None,
                     extra_headers: list[tuple[bytes, bytes]] | None = None) -> WebSocketConnection:
        await self._stream.send_all(self._ws.send(AcceptConnection(
            subprotocol=subprotocol, extra_headers=extra_headers or [])))
        self.connection = WebSocketConnection(self._stream, self.path, self._receive_bytes,
                                              self._hub)
        return self.connection

    async def reject(self, status_code: int, *, extra_headers: list[tuple[bytes, bytes]] | None = None,
                     body: bytes | None = None) -> None:
        headers = list(extra_headers or [])
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        data = self._ws.send(RejectConnection(status_code=status_code, headers=headers,
                                              has_body=bool(body)))
        if body:
            data += self._ws.send(RejectData(data=body))
        await self._stream.send_all(data)


Handler = Callable[[WebSocketRequest], Awaitable[None]]


async def _serve_one(handler: Handler, receive_bytes: int, hub: ReadHub | None,
                     stream: trio.abc.Stream, handshake_timeout_s: float) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    request: Request | None = None
    accepted: WebSocketRequest | None = None
    try:
        with trio.move_on_after(handshake_timeout_s):
            while request is None:
                data = await stream.receive_some(receive_bytes)
                if not data:
                    return
                ws.receive_data(data if isinstance(data, bytes) else bytes(data))
                for event in ws.events():
                    if isinstance(event, Request):
                        request = event
                        break
        if request is not None:
            accepted = WebSocketRequest(stream, ws, request, receive_bytes, hub)
            await handler(accepted)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception as exc:  # a malformed request, or the handler's bug: this connection only
        if not (type(exc).__module__.startswith("wsproto") or isinstance(exc, ConnectionClosed)):
            print(f"rtbench serve: a connection failed: {type(exc).__name__}: {exc}"[:300],
                  file=sys.stderr, flush=True)
    finally:
        if accepted is not None and accepted.connection is not None:
            await accepted.connection.abort()  # stops watching the socket, then closes it
        else:
            await trio.aclose_forcefully(stream)


_BUSY = b'{"error": {"code": "server_busy", "message": "too many sessions"}}'
_OVER_CAPACITY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(_BUSY)).encode() + b"\r\nConnection: close\r\n\r\n"
                  + _BUSY)
#: File descriptors kept free for everything that is not a connection (stats file, epoll, ...).
FD_MARGIN = 32


def default_max_connections() -> int:
    """The soft ``RLIMIT_NOFILE`` less :data:`FD_MARGIN`: the most connections this process
    can hold without accept() failing."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, (soft if soft != resource.RLIM_INFINITY else 1 << 20) - FD_MARGIN)


async def serve_websocket(
    handler: Handler,
    host: str | None,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    receive_buffer_size: int = RECEIVE_BYTES,
    max_connections: int | None = None,
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    on_over_capacity: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve WebSockets on ``host:port`` (0 = any free port) until cancelled.

    At ``max_connections`` open connections (default: the process's file limit less a margin,
    so accept() never fails with EMFILE) a new one is answered ``503`` and closed at once, and
    a client has ``handshake_timeout_s`` to complete its upgrade: idle sockets cannot crowd
    good clients out.

    With ``ssl_context`` every connection is TLS (wss://): the TLS handshake runs in the
    connection's task, within the upgrade's timeout. TLS connections read through trio's
    ``SSLStream`` (records must be decrypted), not the shared read hub.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    hub = make_hub()
    cap = default_max_connections() if max_connections is None else max_connections
    open_now = 0

    async def one(tcp: trio.SocketStream) -> None:
        nonlocal open_now
        if open_now >= cap:
            if on_over_capacity is not None:
                on_over_capacity()
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                with trio.move_on_after(1.0):
                    await tcp.send_all(_OVER_CAPACITY)
            await trio.aclose_forcefully(tcp)
            return
        open_now += 1
        try:
            stream: trio.abc.Stream = tcp
            if ssl_context is not None:
                stream = trio.SSLStream(tcp, ssl_context, server_side=True,
                                        https_compatible=True)
            await _serve_one(handler, receive_buffer_size, hub, stream, handshake_timeout_s)
        finally:
            open_now -= 1

    async with trio.open_nursery() as nursery:
        if hub is not None:
            nursery.start_soon(hub.run)
        task_status.started(WebSocketServer(listeners))
        await trio.serve_listeners(one, listeners)
    raise AssertionError("serve_listeners returned")


__all__ = ["ConnectionClosed", "WebSocketConnection", "WebSocketRequest", "WebSocketServer",
           "serve_websocket"]
