"""The simulator's I/O edge: a WebSocket server (:mod:`rtbench.wsserver`) around :class:`SimSession`.

Routing (paths, dialect, auth) happens here on the handshake; everything after the upgrade is
the sans-IO behaviour. One task reads client frames, one sends what the behaviour has due.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import orjson
import trio

# The lean server (same API as the trio-websocket subset used here, no reader task per
# connection; see wsserver.py for the profile that motivated it).
from .. import wsserver as trio_websocket
from ..protocol import Connection, Dialect, ProtocolViolation, Role
from .behaviour import Close, SimSession
from .profile import Profile

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
#: Read up to this much per receive: several audio frames per wakeup under load (the
#: trio-websocket default, 4 KiB, needs two reads for one 100 ms chunk).
RECEIVE_BYTES = 256 * 1024
KEY_SUBPROTOCOL = "openai-insecure-api-key."


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    profile: Profile = field(default_factory=Profile)
    api_key: str | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    dialect: Dialect
    provider: str  # openai | azure
    model: str


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, azure: bool) -> None:
        self.status, self.code, self.message, self.azure = status, code, message, azure

    def body(self) -> bytes:
        if self.azure:
            return orjson.dumps({"error": {"code": self.code, "message": self.message}})
        return orjson.dumps({"error": {"message": self.message, "type": "invalid_request_error",
                                       "code": self.code, "param": None}})


def _header(request: trio_websocket.WebSocketRequest, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in request.headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def route(request: trio_websocket.WebSocketRequest) -> Route:
    """Which dialect/provider a handshake asks for; Refused (404/400) if none."""
    parts = urlsplit(request.path)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    beta_asked = (_header(request, "openai-beta") or "").strip() == "realtime=v1" or (
        BETA_SUBPROTOCOL in request.proposed_subprotocols)
    path = parts.path.rstrip("/")
    if path == "/v1/realtime":
        if "model" not in query:
            raise Refused(400, "missing_model", "Missing required parameter: 'model'.", False)
        return Route(Dialect.BETA if beta_asked else Dialect.GA, "openai", query["model"])
    if path == "/openai/v1/realtime":
        if "api-version" in query:
            raise Refused(401, "401", "Access denied due to invalid subscription key or wrong "
                          "API endpoint. Make sure to provide a valid key for an active "
                          "subscription and use a correct regional API endpoint for your "
                          "resource.", True)
        if "model" not in query:
            raise Refused(400, "BadRequest", "Missing required query parameter 'model'.", True)
        return Route(Dialect.BETA if beta_asked else Dialect.GA, "azure", query["model"])
    if path == "/openai/realtime":
        if "api-version" not in query or "deployment" not in query:
            raise Refused(404, "404", "Resource not found", True)
        return Route(Dialect.BETA, "azure", query["deployment"])
    raise Refused(404, "404", "Resource not found", path.startswith("/openai"))


def authorize(request: trio_websocket.WebSocketRequest, api_key: str | None, azure: bool) -> None:
    if api_key is None:
        return
    offered: list[str] = []
    bearer = _header(request, "authorization")
    if bearer and bearer.lower().startswith("bearer "):
        offered.append(bearer[7:].strip())
    for value in (_header(request, "api-key"),
                  parse_qs(urlsplit(request.path).query).get("api-key", [None])[-1]):
        if value:
            offered.append(value)
    offered += [p[len(KEY_SUBPROTOCOL):] for p in request.proposed_subprotocols
                if p.startswith(KEY_SUBPROTOCOL)]
    if api_key in offered:
        return
    if azure:
        raise Refused(401, "401", "Access denied due to invalid subscription key or wrong API "
                      "endpoint. Make sure to provide a valid key for an active subscription "
                      "and use a correct regional API endpoint for your resource.", True)
    raise Refused(401, "invalid_api_key", "Incorrect API key provided. You can find your API "
                  "key at https://platform.openai.com/account/api-keys.", False)


class SimServer:
    """Serves simulated Realtime sessions; ``stats`` counts what happened."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.active = 0
        self.stats: dict[str, int] = {"handshakes": 0, "refused": 0, "sessions": 0}
        self.port: int | None = None

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(
                trio_websocket.serve_websocket, self._handle, self.config.host, self.config.port,
                None, receive_buffer_size=RECEIVE_BYTES))
            self.port = server.port
            task_status.started(server.port)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        self._count("handshakes")
        try:
            r = route(request)
            authorize(request, self.config.api_key, r.provider == "azure")
        except Refused as exc:
            self._count("refused")
            self._count(f"refused_{exc.status}")
            await request.reject(exc.status, extra_headers=[(b"content-type", b"application/json")],
                                 body=exc.body())
            return
        await trio.sleep(self.config.profile.handshake.sample(self.rng) / 1000.0)
        subprotocol = "realtime" if "realtime" in request.proposed_subprotocols else None
        ws = await request.accept(subprotocol=subprotocol)
        self._count("sessions")
        self.active += 1
        try:
            await self._run(ws, r)
        finally:
            self.active -= 1

    async def _run(self, ws: trio_websocket.WebSocketConnection, r: Route) -> None:
        sim = SimSession(r.dialect, self.config.profile, model=r.model,
                         rng=random.Random(self.rng.random()), load=lambda: self.active)
        conn = Connection(Role.SERVER, r.dialect)
        waker = _Waker()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, ws, sim, conn, waker, nursery.cancel_scope)
            sim.start(trio.current_time(), time.time())
            await self._send_due(ws, sim, conn, waker)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _read(ws: trio_websocket.WebSocketConnection, sim: SimSession, conn: Connection,
                    waker: _Waker, scope: trio.CancelScope) -> None:
        """Feed client frames to the behaviour, stamped on receipt; end when the peer closes."""
        while True:
            try:
                frame = await ws.get_message()
            except trio_websocket.ConnectionClosed:
                scope.cancel()
                return
            now = trio.current_time()
            try:
                sim.receive(conn.receive(frame), now)
            except ProtocolViolation as exc:
                sim.protocol_error(now, exc.detail)
            waker.wake_by(sim.next_due())

    @staticmethod
    async def _send_due(ws: trio_websocket.WebSocketConnection, sim: SimSession,
                        conn: Connection, waker: _Waker) -> None:
        """Sleep until the next output is due (or a client frame arrives) and send it."""
        try:
            while not sim.closed:
                await waker.wait_until(sim.next_due())
                for out in sim.pop_due(trio.current_time()):
                    if isinstance(out, Close):
                        await ws.aclose(out.code or 1000, out.reason)
                        return
                    text = conn.send(out)
                    if text is not None:
                        await ws.send_message(text)
        except trio_websocket.ConnectionClosed:
            pass


class _Waker:
    """Lets the reader cut the sender's sleep short when new input scheduled earlier output.

    Most client frames (audio appends) schedule nothing, so the sender is woken only when the
    next due output moved before the time it sleeps until: one task switch per frame saved.
    """

    def __init__(self) -> None:
        self._event = trio.Event()
        self._until = math.inf

    def wake_by(self, due: float | None) -> None:
        if due is not None and due < self._until:
            self._event.set()

    async def wait_until(self, deadline: float | None) -> None:
        self._until = math.inf if deadline is None else deadline
        with trio.move_on_at(self._until):
            await self._event.wait()
        self._until = -math.inf  # awake: any new output is seen before the next sleep
        if self._event.is_set():
            self._event = trio.Event()
