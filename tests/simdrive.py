"""Drive a sans-IO SimSession with made-up time: a tiny event-loop stand-in for tests."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from rtbench.protocol import Connection, Dialect, Event, EventType, Role, SessionConfig, session_to_wire
from rtbench.protocol.audio import SAMPLES_PER_MS
from rtbench.sim import Close, FaultRule, Profile, SimSession
from rtbench.sim.behaviour import Injected, Raw


def tone(ms: int) -> np.ndarray:
    t = np.arange(ms * SAMPLES_PER_MS) / 24000
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def append(pcm: np.ndarray) -> Event:
    return Event(EventType.INPUT_AUDIO_APPEND, {"audio": base64.b64encode(pcm.tobytes()).decode()})


class Driver:
    """Feeds client events at given times and collects (time, wire text) of what is sent."""

    def __init__(self, dialect: Dialect, profile: Profile, model: str = "gpt-realtime", *,
                 faults: Sequence[FaultRule] = (),
                 response_fault: Callable[[int], FaultRule | None] = lambda n: None,
                 azure: bool = False, start: bool = True) -> None:
        self.sim = SimSession(dialect, profile, model=model, faults=faults,
                              response_fault=response_fault, azure=azure)
        self.conn = Connection(Role.SERVER, dialect)
        self.now = 0.0
        self.sent: list[tuple[float, str]] = []
        self.raw: list[str] = []          # frames sent as is (malformed on purpose)
        self.injected: list[str] = []     # fault kinds the behaviour reported as applied
        self.closed: Close | None = None
        if start:
            self.sim.start(0.0, 1_700_000_000.0)
            self.advance(0.0)

    def advance(self, to: float) -> None:
        while True:
            due = self.sim.next_due()
            if due is None or due > to:
                break
            self.now = max(self.now, due)
            for out in self.sim.pop_due(self.now):
                if isinstance(out, Close):
                    self.closed = out
                    return
                if isinstance(out, Injected):
                    self.injected.append(out.kind)
                    continue
                if isinstance(out, Raw):
                    self.raw.append(out.text)
                    continue
                text = self.conn.send(out)
                if text is not None:
                    self.sent.append((self.now, text))
        self.now = to

    def send(self, event: Event, at: float | None = None) -> None:
        if at is not None:
            self.advance(at)
        self.sim.receive(event, self.now)
        self.advance(self.now)

    def stream(self, pcm: np.ndarray, chunk_ms: int = 20, start: float | None = None) -> float:
        """Send ``pcm`` in real-time chunks; return the time the last chunk was sent."""
        t = self.now if start is None else start
        size = chunk_ms * SAMPLES_PER_MS
        for i in range(0, len(pcm), size):
            t += chunk_ms / 1000
            self.send(append(pcm[i : i + size]), at=t)
        return t

    def configure(self, cfg: SessionConfig) -> None:
        self.send(Event(EventType.SESSION_UPDATE,
                        {"session": session_to_wire(cfg, self.conn.dialect)}))

    def types(self) -> list[str]:
        import orjson

        return [orjson.loads(text)["type"] for _, text in self.sent]

    def first(self, wire_type: str) -> tuple[float, dict[str, object]]:
        import orjson

        for t, text in self.sent:
            obj = orjson.loads(text)
            if obj["type"] == wire_type:
                return t, obj
        raise AssertionError(f"{wire_type} never sent; got {self.types()}")

    def all_json(self) -> Iterable[dict[str, object]]:
        import orjson

        return [orjson.loads(text) for _, text in self.sent]
