"""Client WebSocket text frames built once and masked per send (RFC 6455 §5.2, §5.3), sans-IO.

Why: a session sends 10–50 audio frames a second and every one is a pre-encoded JSON text
that many sessions share. Framing it through a generic library costs a header build, a
copy and a pure-Python XOR per send. Here the header and the payload are prepared once per
frame; a send is one XOR with a fresh 32-bit key (websockets' C ``apply_mask``) and a join.
Keys come from ``os.urandom`` in batches, so each frame still gets an unpredictable key as
§5.3 requires of clients.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

try:
    from websockets.speedups import apply_mask
except ImportError:  # a build of websockets without its C extension: its pure-Python twin
    from websockets.utils import apply_mask

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
_FIN = 0x80
_MASK_BIT = 0x80
_KEYS_PER_BATCH = 4096


def frame_header(payload_len: int, opcode: int = OPCODE_TEXT, masked: bool = True) -> bytes:
    """Header of a final frame (for a masked client frame: without the 4 key bytes)."""
    first = _FIN | opcode
    mask = _MASK_BIT if masked else 0
    if payload_len < 126:
        return bytes((first, mask | payload_len))
    if payload_len < 1 << 16:
        return struct.pack("!BBH", first, mask | 126, payload_len)
    return struct.pack("!BBQ", first, mask | 127, payload_len)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked (server-to-client) frame."""
    return frame_header(len(payload), opcode, masked=False) + payload


#: Longest close reason: a control frame's payload is at most 125 bytes, 2 are the code.
MAX_CLOSE_REASON_BYTES = 123
#: Close codes defined for use on the wire (RFC 6455 §7.4.1 and the IANA registry); 1005, 1006
#: and 1015 are local-only, the rest of 1000–2999 is reserved, 3000–4999 is for libraries and
#: applications.
_DEFINED_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014))


def close_payload(code: int, reason: str | None = None) -> bytes:
    """A close frame's payload; the reason is cut to 123 bytes, never inside a character."""
    encoded = (reason or "").encode()
    if len(encoded) > MAX_CLOSE_REASON_BYTES:
        encoded = encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode()
    return struct.pack("!H", code) + encoded


def valid_close_code(code: int) -> bool:
    """May a peer send ``code`` in a close frame (RFC 6455 §7.4)?"""
    return code in _DEFINED_CLOSE_CODES or 3000 <= code <= 4999


def check_close(payload: bytes) -> None:
    """Raise :class:`FrameError` unless ``payload`` is a valid close frame payload (§5.5.1):
    empty, or a valid code then a UTF-8 reason. 1002 for a bad code or a 1-byte payload, 1007
    for a reason that is not UTF-8."""
    if not payload:
        return
    if len(payload) == 1:
        raise FrameError(1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not valid_close_code(code):
        raise FrameError(1002, f"close code {code} may not be sent")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(1007, "close reason is not UTF-8") from None


#: The code a close frame without one stands for (local only, never sent).
NO_STATUS = 1005


def parse_close(payload: bytes) -> tuple[int, str | None]:
    """Code and reason of a close payload :func:`check_close` accepted (no code: 1005)."""
    if len(payload) < 2:
        return NO_STATUS, None
    return int.from_bytes(payload[:2], "big"), payload[2:].decode() or None


def xor_mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``key`` (masking and unmasking are the same).

    websockets' C helper (``websockets.speedups.apply_mask``): 1.3 µs for a 20 ms audio chunk's
    1.3 kB message where numpy's XOR over uint32 words took 3.3 µs (array set-up, padding and
    ``tobytes``), on every chunk of every session."""
    return apply_mask(payload, key)


class OutFrame:
    """One complete client text message, ready to be masked and sent any number of times."""

    __slots__ = ("header", "payload", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.payload = text.encode()
        self.size = len(self.payload)
        self.header = frame_header(self.size)

    def masked(self, key: bytes) -> bytes:
        """Header, key and masked payload: the bytes to put on the socket."""
        return b"".join((self.header, key, apply_mask(self.payload, key)))


class MaskKeys:
    """Unpredictable 4-byte masking keys, drawn from the OS in batches."""

    __slots__ = ("_batch", "_next")

    def __init__(self) -> None:
        self._batch = b""
        self._next = 0

    def next(self) -> bytes:
        if self._next >= len(self._batch):
            self._batch = os.urandom(4 * _KEYS_PER_BATCH)
            self._next = 0
        key = self._batch[self._next:self._next + 4]
        self._next += 4
        return key


class FrameError(Exception):
    """The peer broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class FrameReader:
    """Whole messages and control frames out of a WebSocket byte stream, sans-IO.

    Why not wsproto's frame protocol after the handshake: it parses through generators and
    per-field buffer calls and unmasks in pure Python, which was the largest single cost of
    the simulator at hundreds of sessions. This reader slices one buffer: per frame a
    header decode, a numpy unmask (client frames) and, for text, one UTF-8 decode.

    ``feed(data)`` then iterate ``events()``: ``(opcode, payload)`` with opcode TEXT (payload
    ``str``), BINARY (``bytes``, continuations joined) or CLOSE / PING / PONG (``bytes``), in
    arrival order (a control frame between two fragments comes before the message it
    interrupts). Raises :class:`FrameError` on a protocol violation (a close frame with a code
    that may not be sent included), an oversized message or bad UTF-8.
    """

    def __init__(self, masked: bool, max_message_bytes: int) -> None:
        self._masked = masked
        self._max = max_message_bytes
        self._buf = bytearray()
        self._pos = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0

    def feed(self, data: bytes | bytearray) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def events(self) -> Iterator[tuple[int, str | bytes]]:
        while (frame := self._next_frame()) is not None:
            fin, opcode, payload = frame
            if opcode >= OPCODE_CLOSE:
                if not fin or len(payload) > 125 or opcode > OPCODE_PONG:
                    raise FrameError(1002, "bad control frame")
                if opcode == OPCODE_CLOSE:
                    check_close(payload)
                yield opcode, payload
                continue
            if opcode == OPCODE_CONTINUATION:
                if not self._fragments:
                    raise FrameError(1002, "continuation without a message")
            elif self._fragments:
                raise FrameError(1002, "new message inside a fragmented one")
            elif opcode not in (OPCODE_TEXT, OPCODE_BINARY):
                raise FrameError(1002, f"reserved opcode {opcode}")
            else:
                self._fragment_opcode = opcode
            if not fin or self._fragments:
                self._fragments.append(payload)
                self._fragment_size += len(payload)
                if self._fragment_size > self._max:
                    raise FrameError(1009, f"message over {self._max} bytes")
                if not fin:
                    continue
                payload = b"".join(self._fragments)
                self._fragments, self._fragment_size = [], 0
            if self._fragment_opcode == OPCODE_TEXT:
                try:
                    yield OPCODE_TEXT, payload.decode()
                except UnicodeDecodeError:
                    raise FrameError(1007, "text message is not UTF-8") from None
            else:
                yield OPCODE_BINARY, payload

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        first, second = buf[pos], buf[pos + 1]
        if first & 0x70:
            raise FrameError(1002, "reserved bits set (no extension was negotiated)")
        if bool(second & _MASK_BIT) != self._masked:
            raise FrameError(1002, "client frames must be masked, server frames not")
        length, head = second & 0x7F, 2
        if length == 126:
            if avail < 4:
                return None
            length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if avail < 10:
                return None
            length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        if length > self._max:
            raise FrameError(1009, f"frame over {self._max} bytes")
        key = b""
        if self._masked:
            key, head = bytes(buf[pos + head : pos + head + 4]), head + 4
        end = pos + head + length
        if len(buf) < end:
            return None
        payload = bytes(buf[pos + head : end])
        self._pos = end
        if key and payload:
            payload = xor_mask(payload, key)
        return bool(first & _FIN), first & 0x0F, payload


def unmask(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one complete masked frame: for tests and the fuzzers."""
    first, second = frame[0], frame[1]
    length, pos = second & 0x7F, 2
    if length == 126:
        (length,), pos = struct.unpack("!H", frame[2:4]), 4
    elif length == 127:
        (length,), pos = struct.unpack("!Q", frame[2:10]), 10
    key = frame[pos : pos + 4]
    payload = frame[pos + 4 : pos + 4 + length]
    return first & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(payload))
