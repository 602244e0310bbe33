"""RFC 6455 conformance of both ends, driven by raw frames over loopback sockets (port 0).

The server (:mod:`rtbench.ws.server`) is fed hand-made masked frames by a raw TCP client; the
client (:mod:`rtbench.ws.client`) talks to a raw TCP server that sends hand-made frames. Each
side must answer a protocol error with the RFC's close code (1002, 1007 for bad UTF-8), never
echo a close code that may not be sent, handle control frames between fragments, and answer a
ping read before a message before it handles that message.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio

from rtbench.ws import client as wsclient
from rtbench.ws import server as wsserver
from rtbench.ws.frame import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    FrameReader,
    close_payload,
    valid_close_code,
    xor_mask,
)

Frame = tuple[int, bytes]

#: Close codes a peer may not send (RFC 6455 §7.4): below 1000, local-only, reserved, too big.
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
VALID_CODES = [1000, 1001, 1003, 1007, 1011, 3000, 3999, 4000, 4999]
HANDSHAKE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
#: A failed connection closes at once: well under the server's 1 s wait for a close reply.
CLOSE_BOUND_S = wsserver.CLOSE_WAIT_S * 0.9


def raw_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    """One frame, as a client (masked) or a server (unmasked) would send it."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + xor_mask(payload, key)


def close_frame(code: int, reason: bytes = b"", *, masked: bool = True) -> bytes:
    return raw_frame(OPCODE_CLOSE, struct.pack("!H", code) + reason, masked=masked)


def as_bytes(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload


async def read_frames(stream: trio.abc.Stream, leftover: bytes, masked: bool) -> list[Frame]:
    """Every frame the peer sends until it closes TCP (bounded)."""
    reader = FrameReader(masked=masked, max_message_bytes=1 << 20)
    reader.feed(leftover)
    frames: list[Frame] = []
    with trio.fail_after(5):
        while True:
            frames += [(op, as_bytes(p)) for op, p in reader.events()]
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return frames
            if not data:
                return frames
            reader.feed(data)


def close_code(frames: list[Frame]) -> int | None:
    """The code of the close frame among ``frames`` (None: no close frame)."""
    codes = [int.from_bytes(p[:2], "big") for op, p in frames if op == OPCODE_CLOSE]
    assert len(codes) <= 1, frames
    return codes[0] if codes else None


# -- the server -------------------------------------------------------------------------------


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, list[wsserver.WebSocketConnection]]]:
    """Our server on a free port, echoing every message through ``get_message``."""
    connections: list[wsserver.WebSocketConnection] = []

    async def echo(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        connections.append(ws)
        while True:
            await ws.send_message(await ws.get_message())

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, echo, "127.0.0.1", 0, None)
        yield server.port, connections
        nursery.cancel_scope.cancel()


async def exchange(port: int, data: bytes) -> list[Frame]:
    """Upgrade, send ``data`` (raw client frames) in one write, return what the server sends."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + HANDSHAKE_KEY.encode() + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n")
        buf = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in buf:
                buf += await stream.receive_some(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        await stream.send_all(data)
        return await read_frames(stream, rest, masked=False)


@pytest.mark.parametrize("code", INVALID_CODES)
async def test_server_answers_a_close_code_that_may_not_be_sent_with_1002(code: int) -> None:
    async with echo_server() as (port, connections):
        frames = await exchange(port, close_frame(code))
    assert close_code(frames) == 1002  # not an echo of the bad code
    assert connections[0].closed is not None and connections[0].closed.code == 1002


@pytest.mark.parametrize("code", VALID_CODES)
async def test_server_echoes_a_valid_close_code(code: int) -> None:
    async with echo_server() as (port, connections):
        frames = await exchange(port, close_frame(code, "bye ü".encode()))
    assert close_code(frames) == code
    assert connections[0].closed == wsclient.CloseReason(code, "bye ü")


async def test_server_answers_an_empty_close_with_an_empty_close() -> None:
    async with echo_server() as (port, connections):
        frames = await exchange(port, raw_frame(OPCODE_CLOSE, b""))
    assert frames == [(OPCODE_CLOSE, b"")]
    assert connections[0].closed is not None and connections[0].closed.code == 1005


@pytest.mark.parametrize(("data", "code"), [
    (raw_frame(OPCODE_CLOSE, b"\x03"), 1002),                          # 1-byte close payload
    (close_frame(1000, b"\xff\xfe"), 1007),                            # reason not UTF-8
    (raw_frame(OPCODE_TEXT, b"caf\xc3"), 1007),                        # text not UTF-8
    (raw_frame(OPCODE_TEXT, b"\xc3", fin=False)
     + raw_frame(OPCODE_CONTINUATION, b"\x28"), 1007),                 # bad across fragments
    (raw_frame(OPCODE_PING, b"x" * 126), 1002),                        # control frame > 125
    (raw_frame(OPCODE_PING, b"x", fin=False), 1002),                   # fragmented control
    (raw_frame(OPCODE_CONTINUATION, b"x"), 1002),                      # nothing to continue
    (raw_frame(OPCODE_TEXT, b"a", fin=False) + raw_frame(OPCODE_TEXT, b"b"), 1002),
    (raw_frame(0x3, b""), 1002),                                       # reserved opcode
    (raw_frame(OPCODE_TEXT, b"a", masked=False), 1002),                # client frame unmasked
], ids=["close-1-byte", "close-reason-utf8", "text-utf8", "fragments-utf8", "long-ping",
        "fragmented-ping", "lone-continuation", "text-inside-fragments", "reserved-opcode",
        "unmasked"])
async def test_server_fails_a_protocol_error_with_the_rfc_code(data: bytes, code: int) -> None:
    async with echo_server() as (port, _):
        with trio.fail_after(CLOSE_BOUND_S):  # no wait for a reply that cannot be parsed
            frames = await exchange(port, data)
    assert close_code(frames) == code
    assert [op for op, _ in frames] == [OPCODE_CLOSE]  # nothing was echoed


async def test_server_takes_control_frames_between_fragments_and_a_split_character() -> None:
    data = (raw_frame(OPCODE_TEXT, b"caf\xc3", fin=False) + raw_frame(OPCODE_PING, b"p1")
            + raw_frame(OPCODE_CONTINUATION, b"\xa9 ", fin=False)
            + raw_frame(OPCODE_PONG, b"unsolicited")
            + raw_frame(OPCODE_CONTINUATION, b"ok") + close_frame(1000))
    async with echo_server() as (port, _):
        frames = await exchange(port, data)
    assert frames == [(OPCODE_PONG, b"p1"), (OPCODE_TEXT, "café ok".encode()),
                      (OPCODE_CLOSE, struct.pack("!H", 1000))]


async def test_server_answers_pings_read_before_a_message_before_returning_it() -> None:
    data = (raw_frame(OPCODE_PING, b"a") + raw_frame(OPCODE_TEXT, b"one")
            + raw_frame(OPCODE_PING, b"b") + raw_frame(OPCODE_BINARY, b"\x02")
            + close_frame(1000))
    async with echo_server() as (port, _):
        frames = await exchange(port, data)  # all in one write: one read on the server
    assert frames == [(OPCODE_PONG, b"a"), (OPCODE_TEXT, b"one"), (OPCODE_PONG, b"b"),
                      (OPCODE_BINARY, b"\x02"), (OPCODE_CLOSE, struct.pack("!H", 1000))]


# -- the client -------------------------------------------------------------------------------

ServerScript = Callable[[trio.SocketStream], Awaitable[None]]


def accept_token(key: str) -> bytes:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest)


@asynccontextmanager
async def raw_server(script: bytes) -> AsyncIterator[tuple[int, list[list[Frame]]]]:
    """A server that upgrades, writes ``script`` (raw server frames) in one write, then records
    the client's frames until the client closes TCP."""
    received: list[list[Frame]] = []

    async def handler(stream: trio.SocketStream) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive_some(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                              + accept_token(key.decode()) + b"\r\n\r\n" + script)
        received.append(await read_frames(stream, rest, masked=True))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0,
                                                          host="127.0.0.1"))
        yield int(listeners[0].socket.getsockname()[1]), received
        nursery.cancel_scope.cancel()


async def run_client(port: int, echo: bool = False) -> tuple[wsclient.CloseReason, list[str | bytes]]:
    """Connect our client, read until it closes (echoing text if asked), close; return the
    close reason it reports and the messages it got."""
    got: list[str | bytes] = []
    with trio.fail_after(5):
        ws = await wsclient.connect(f"ws://127.0.0.1:{port}/", headers=[], ssl_context=None,
                                    max_message_bytes=1 << 20)
        async with trio.open_nursery() as nursery:
            ws.attach(nursery)

            def handle(message: str | bytes, t: float) -> None:
                got.append(message)
                if echo and isinstance(message, str):
                    ws.send_text(message)

            try:
                reason = await ws.receive_into(handle)
            finally:
                await ws.aclose()
    return reason, got


@pytest.mark.parametrize("code", INVALID_CODES)
async def test_client_answers_a_close_code_that_may_not_be_sent_with_1002(code: int) -> None:
    async with raw_server(close_frame(code, masked=False)) as (port, received):
        reason, _ = await run_client(port)
    assert reason.code == 1002
    assert close_code(received[0]) == 1002


@pytest.mark.parametrize("code", VALID_CODES)
async def test_client_echoes_a_valid_close_code(code: int) -> None:
    async with raw_server(close_frame(code, "bye ü".encode(), masked=False)) as (port, received):
        reason, _ = await run_client(port)
    assert reason == wsclient.CloseReason(code, "bye ü")
    assert close_code(received[0]) == code


@pytest.mark.parametrize(("script", "code"), [
    (raw_frame(OPCODE_CLOSE, b"\x03", masked=False), 1002),
    (close_frame(1000, b"\xff\xfe", masked=False), 1007),
    (raw_frame(OPCODE_TEXT, b"caf\xc3", masked=False), 1007),
    (raw_frame(OPCODE_PING, b"x" * 126, masked=False), 1002),
    (raw_frame(OPCODE_CONTINUATION, b"x", masked=False), 1002),
    (raw_frame(OPCODE_TEXT, b"a", masked=True), 1002),  # server frames are never masked
], ids=["close-1-byte", "close-reason-utf8", "text-utf8", "long-ping", "lone-continuation",
        "masked"])
async def test_client_fails_a_protocol_error_with_the_rfc_code(script: bytes, code: int) -> None:
    async with raw_server(script) as (port, received):
        with trio.fail_after(CLOSE_BOUND_S):  # no wait for a reply that cannot be parsed
            reason, got = await run_client(port)
    assert reason.code == code and got == []
    assert close_code(received[0]) == code


async def test_client_takes_control_frames_between_fragments_and_answers_pings_in_order() -> None:
    script = b"".join((
        raw_frame(OPCODE_PING, b"a", masked=False),
        raw_frame(OPCODE_TEXT, b"caf\xc3", fin=False, masked=False),
        raw_frame(OPCODE_PING, b"b", masked=False),
        raw_frame(OPCODE_CONTINUATION, b"\xa9", masked=False),
        raw_frame(OPCODE_PING, b"c", masked=False),
        raw_frame(OPCODE_TEXT, b"two", masked=False),
        close_frame(1000, masked=False)))
    async with raw_server(script) as (port, received):
        reason, got = await run_client(port, echo=True)
    assert got == ["café", "two"] and reason.code == 1000
    assert received[0] == [(OPCODE_PONG, b"a"), (OPCODE_PONG, b"b"), (OPCODE_TEXT, "café".encode()),
                           (OPCODE_PONG, b"c"), (OPCODE_TEXT, b"two"),
                           (OPCODE_CLOSE, struct.pack("!H", 1000))]


# -- close payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["é" * 100, "a" + "€" * 60, "x" * 200, "🎧" * 40])
def test_a_long_close_reason_is_cut_at_a_character_boundary(reason: str) -> None:
    payload = close_payload(1011, reason)
    assert len(payload) <= 125
    text = payload[2:].decode()  # raises if a character was cut
    assert reason.startswith(text) and len(payload) > 125 - 4


def test_close_code_ranges() -> None:
    assert not any(valid_close_code(c) for c in INVALID_CODES)
    assert all(valid_close_code(c) for c in VALID_CODES)


async def test_a_response_head_in_pieces_with_frames_behind_it_reaches_the_reader() -> None:
    """The 101's head split over several reads, then frames in the head's last segment: only
    the head goes to the upgrade, the frames to the reader, in order."""
    got: list[str | bytes] = []

    async def handler(stream: trio.SocketStream) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive_some(65536)
        key = next(line.split(b":", 1)[1].strip() for line in buf.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_token(key.decode())
                    + b"\r\n\r\n" + raw_frame(OPCODE_TEXT, b"first", masked=False)
                    + raw_frame(OPCODE_TEXT, b"second", masked=False))
        for piece in (response[:20], response[20:61], response[61:]):
            await stream.send_all(piece)
            await trio.sleep(0.01)
        await stream.send_all(close_frame(4000, b"done", masked=False))
        await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0,
                                                          host="127.0.0.1"))
        with trio.fail_after(5):
            ws = await wsclient.connect(f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/",
                                        headers=[], ssl_context=None, max_message_bytes=1 << 20)
            async with trio.open_nursery() as inner:
                ws.attach(inner)
                reason = await ws.receive_into(lambda message, t: got.append(message))
                await ws.aclose()
        nursery.cancel_scope.cancel()
    assert got == ["first", "second"] and reason == wsclient.CloseReason(4000, "done")


async def test_what_the_handler_raises_reaches_the_caller_and_the_hub_goes_on() -> None:
    """On TCP the handler runs in the shared read hub's task: its exception must come out of
    that connection's ``receive_into``, and other connections keep being read."""
    script = raw_frame(OPCODE_TEXT, b"boom", masked=False) + raw_frame(
        OPCODE_TEXT, b"fine", masked=False) + close_frame(1000, masked=False)

    def explode(message: str | bytes, t: float) -> None:
        raise RuntimeError(f"handler bug on {message!r}")

    async with raw_server(script) as (port, _):
        with trio.fail_after(5):
            first = await wsclient.connect(f"ws://127.0.0.1:{port}/", headers=[],
                                           ssl_context=None, max_message_bytes=1 << 20)
            async with trio.open_nursery() as nursery:
                first.attach(nursery)
                with pytest.raises(RuntimeError, match="handler bug on 'boom'"):
                    await first.receive_into(explode)
                await first.aclose()
            reason, got = await run_client(port)
    assert got == ["boom", "fine"] and reason.code == 1000
