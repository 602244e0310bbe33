"""Client WebSocket text frames built once and masked per send (RFC 6455 §5.2, §5.3), sans-IO.

Why: a session sends 10–50 audio frames a second and every one is a pre-encoded JSON text
that many sessions share. Framing it through a generic library costs a header build, a
copy and a pure-Python XOR per send. Here the header and the payload (as a little-endian
``uint32`` array, zero-padded to a multiple of 4) are prepared once per frame; a send is one
numpy XOR with a fresh 32-bit key and a join. Keys come from ``os.urandom`` in batches, so
each frame still gets an unpredictable key as §5.3 requires of clients.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import numpy.typing as npt

OPCODE_TEXT = 0x1
_FIN = 0x80
_MASK_BIT = 0x80
_KEYS_PER_BATCH = 4096


def frame_header(payload_len: int, opcode: int = OPCODE_TEXT) -> bytes:
    """Header of a final, masked client frame (without the 4 key bytes)."""
    first = _FIN | opcode
    if payload_len < 126:
        return bytes((first, _MASK_BIT | payload_len))
    if payload_len < 1 << 16:
        return struct.pack("!BBH", first, _MASK_BIT | 126, payload_len)
    return struct.pack("!BBQ", first, _MASK_BIT | 127, payload_len)


class OutFrame:
    """One complete client text message, ready to be masked and sent any number of times."""

    __slots__ = ("header", "size", "text", "words")

    def __init__(self, text: str) -> None:
        payload = text.encode()
        self.text = text
        self.size = len(payload)
        self.header = frame_header(self.size)
        padded = payload + b"\0" * (-self.size % 4)
        self.words: npt.NDArray[np.uint32] = np.frombuffer(padded, dtype="<u4")

    def masked(self, key: np.uint32) -> bytes:
        """Header, key and masked payload: the bytes to put on the socket."""
        body = (self.words ^ key).tobytes()
        if len(body) != self.size:
            body = body[: self.size]
        return b"".join((self.header, key.tobytes(), body))


class MaskKeys:
    """Unpredictable 32-bit masking keys, drawn from the OS in batches."""

    __slots__ = ("_batch", "_next")

    def __init__(self) -> None:
        self._batch: npt.NDArray[np.uint32] = np.zeros(0, dtype="<u4")
        self._next = 0

    def next(self) -> np.uint32:
        if self._next == len(self._batch):
            self._batch = np.frombuffer(os.urandom(4 * _KEYS_PER_BATCH), dtype="<u4")
            self._next = 0
        key: np.uint32 = self._batch[self._next]
        self._next += 1
        return key


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
