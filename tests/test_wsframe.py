"""Pre-built client frames and the frame reader, checked against wsproto as the reference."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage

from rtbench.ws.frame import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_TEXT,
    FrameError,
    FrameReader,
    MaskKeys,
    OutFrame,
    server_frame,
    unmask,
)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 1330, 65535, 65536, 200_000])
def test_out_frames_are_valid_masked_frames_for_a_server(size: int) -> None:
    text = ("é" + "x" * size)[:size] if size else ""
    frame = OutFrame(text)
    keys = MaskKeys()
    server = Connection(ConnectionType.SERVER)
    wire = frame.masked(keys.next()) + frame.masked(keys.next())
    server.receive_data(wire)
    got = [e for e in server.events()]
    assert [e.data for e in got if isinstance(e, TextMessage)] == [text, text]
    assert unmask(frame.masked(keys.next())) == (OPCODE_TEXT, text.encode())


def test_every_send_gets_a_fresh_key() -> None:
    frame, keys = OutFrame('{"type":"x"}'), MaskKeys()
    sent = {frame.masked(keys.next()) for _ in range(1000)}
    assert len(sent) > 990


def _client_bytes(*events: object) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    return b"".join(client.send(e) for e in events)  # type: ignore[arg-type]


def test_reader_parses_wsproto_client_frames_fed_byte_by_byte() -> None:
    wire = _client_bytes(
        TextMessage(data="héllo", message_finished=False), TextMessage(data=" world"),
        Ping(payload=b"p"), BytesMessage(data=b"\x00" * 70_000), Message(data="x" * 300),
        CloseConnection(code=4001, reason="bye"))
    reader = FrameReader(masked=True, max_message_bytes=1 << 20)
    out = []
    for i in range(len(wire)):
        reader.feed(wire[i : i + 1])
        out += list(reader.events())
    assert out == [(OPCODE_TEXT, "héllo world"), (OPCODE_PING, b"p"),
                   (OPCODE_BINARY, b"\x00" * 70_000), (OPCODE_TEXT, "x" * 300),
                   (OPCODE_CLOSE, (4001).to_bytes(2, "big") + b"bye")]


def test_reader_reads_server_frames_unmasked() -> None:
    reader = FrameReader(masked=False, max_message_bytes=1000)
    reader.feed(server_frame(OPCODE_TEXT, b'{"a":1}') + server_frame(OPCODE_TEXT, b"z"))
    assert list(reader.events()) == [(OPCODE_TEXT, '{"a":1}'), (OPCODE_TEXT, "z")]


@pytest.mark.parametrize(("wire", "code"), [
    (server_frame(OPCODE_TEXT, b"x"), 1002),                     # a client frame must be masked
    (_client_bytes(TextMessage(data="x" * 2000)), 1009),          # over the limit
    (b"\xc1\x81abcd\x00", 1002),                                 # RSV1 without an extension
    (b"\x89\xfe\x00\x80abcd" + b"\x00" * 128, 1002),               # control frame over 125
])
def test_reader_refuses_what_rfc_6455_forbids(wire: bytes, code: int) -> None:
    reader = FrameReader(masked=True, max_message_bytes=1000)
    reader.feed(wire)
    with pytest.raises(FrameError) as info:
        list(reader.events())
    assert info.value.code == code


def test_bad_utf8_text_is_1007() -> None:
    reader = FrameReader(masked=False, max_message_bytes=1000)
    reader.feed(server_frame(OPCODE_TEXT, b"\xff\xfe"))
    with pytest.raises(FrameError) as info:
        list(reader.events())
    assert info.value.code == 1007


@settings(max_examples=2000, deadline=None)
@given(data=st.binary(max_size=300), masked=st.booleans())
def test_any_bytes_give_events_or_frame_error(data: bytes, masked: bool) -> None:
    reader = FrameReader(masked=masked, max_message_bytes=1000)
    reader.feed(data)
    with contextlib.suppress(FrameError):
        list(reader.events())
