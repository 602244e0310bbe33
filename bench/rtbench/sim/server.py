"""The simulator's I/O edge: a WebSocket server (:mod:`rtbench.ws.server`) around :class:`SimSession`.

Routing (paths, dialect, auth) happens here on the handshake; everything after the upgrade is
the sans-IO behaviour. One task reads client frames, one sends what the behaviour has due; one
timer task for the whole server (:mod:`rtbench.sim.alarms`) wakes each sender when output is due.
"""

from __future__ import annotations

import contextlib
import functools
import random
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trio

from ..process.gcpolicy import ScheduledGc
from ..protocol import Connection, Dialect, ProtocolViolation, Role

# The lean server (same API as the trio-websocket subset used here, no reader task per
# connection; see wsserver.py for the profile that motivated it).
from ..ws import server as wsserver
from ..ws.client import Dial
from ..ws.memory import MemoryListener
from . import payloads
from .alarms import Alarms, Sleeper
from .behaviour import Close, Injected, Raw, SimSession
from .faults import FaultPlan, Injector, describe
from .profile import Profile
from .stats import SimStats

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
KEY_SUBPROTOCOL = "openai-insecure-api-key."


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    profile: Profile = field(default_factory=Profile)
    api_key: str | None = None
    seed: int | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    stats_file: Path | None = None
    stats_interval_s: float = 1.0
    #: OpenAI after May 2026: beta-shaped connections on the OpenAI path are refused (4000).
    openai_beta_disabled: bool = False
    #: Serve wss:// with this context (:mod:`rtbench.sim.tls`); None: plain ws://.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    #: Open connections at most (None: the file limit less a margin; see ws.server).
    max_connections: int | None = None
    handshake_timeout_s: float = wsserver.HANDSHAKE_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Route:
    dialect: Dialect
    provider: str  # openai | azure
    model: str


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, azure: bool) -> None:
        self.status, self.code, self.message, self.azure = status, code, message, azure

    @classmethod
    def from_body(cls, status: int, body: dict[str, Any], azure: bool) -> Refused:
        err = body["error"]
        return cls(status, str(err["code"]), str(err["message"]), azure)

    def body(self) -> bytes:
        if self.azure:
            return orjson.dumps({"error": {"code": self.code, "message": self.message}})
        return orjson.dumps({"error": {"message": self.message, "type": "invalid_request_error",
                                       "code": self.code, "param": None}})


def _header(request: wsserver.WebSocketRequest, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in request.headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def route(request: wsserver.WebSocketRequest) -> Route:
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


def authorize(request: wsserver.WebSocketRequest, api_key: str | None, azure: bool) -> None:
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
    """Serves simulated Realtime sessions; ``stats`` counts what happened and what was injected."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.injector = Injector(config.faults)
        self.stats = SimStats(plan=describe(config.faults))
        self.port: int | None = None
        self.alarms = Alarms()  # wakes every session's sender when its next output is due

    @property
    def active(self) -> int:
        return self.stats.active

    @property
    def injected(self) -> Counter[str]:
        """Faults applied so far, per kind."""
        return self.stats.injected

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve on ``config.host:config.port`` until cancelled; started with the port."""
        async with self._running() as nursery:
            server = await nursery.start(functools.partial(
                wsserver.serve_websocket, self._handle, self.config.host,
                self.config.port, self.config.ssl_context,
                max_connections=self.config.max_connections,
                handshake_timeout_s=self.config.handshake_timeout_s,
                on_over_capacity=lambda: self.stats.count("over_capacity")))
            self.port = server.port
            self._start_tasks(nursery)
            task_status.started(server.port)

    async def serve_in_memory(
        self, *, task_status: trio.TaskStatus[Dial] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve with no socket until cancelled; started with the :data:`Dial` that connects.

        Every connection dialed goes through the same handshake handler and session logic as
        over TCP (see :mod:`rtbench.ws.memory`), so tests can run it on a mock clock.
        """
        async with self._running() as nursery:
            listener = MemoryListener(self._handle, nursery)
            self._start_tasks(nursery)
            task_status.started(listener.dial)
            await trio.sleep_forever()

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[trio.Nursery]:
        try:
            async with trio.open_nursery() as nursery:
                yield nursery
        finally:
            if self.config.stats_file is not None:
                self.stats.write(self.config.stats_file)

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        """The server-wide tasks beside the listener: alarms, GC schedule, stats file."""
        nursery.start_soon(self.alarms.run)
        gc_schedule = ScheduledGc(idle=lambda: self.stats.active == 0,
                                  pauses=self.stats.gc_pauses)
        nursery.start_soon(gc_schedule.run)
        if self.config.stats_file is not None:
            nursery.start_soon(self._write_stats_periodically, self.config.stats_file)

    async def _write_stats_periodically(self, path: Path) -> None:
        while True:
            self.stats.write(path)
            await trio.sleep(self.config.stats_interval_s)

    async def _refuse(self, request: wsserver.WebSocketRequest, exc: Refused) -> None:
        self.stats.count("refused")
        self.stats.count(f"refused_{exc.status}")
        headers = [(b"content-type", b"application/json")]
        if exc.status == 429:
            headers.append((b"retry-after", b"6"))
        await request.reject(exc.status, extra_headers=headers, body=exc.body())

    async def _handle(self, request: wsserver.WebSocketRequest) -> None:
        self.stats.count("handshakes")
        try:
            r = route(request)
            authorize(request, self.config.api_key, r.provider == "azure")
        except Refused as exc:
            await self._refuse(request, exc)
            return
        await trio.sleep(self.config.profile.handshake.sample(self.rng) / 1000.0)
        fault = self.injector.on_connection()
        if fault is not None:
            azure = r.provider == "azure"
            status, body = payloads.handshake_refusal(fault.kind, azure, r.model)
            self.stats.inject(fault.kind, f"connection-{self.stats.counters['handshakes']}")
            await self._refuse(request, Refused.from_body(status, body, azure))
            return
        subprotocol = "realtime" if "realtime" in request.proposed_subprotocols else None
        ws = await request.accept(subprotocol=subprotocol)
        self.stats.count("sessions")
        self.stats.session_started()
        try:
            await self._run(ws, r, self.stats.counters["sessions"])
        except Exception as exc:  # this connection only, never the server
            self.stats.count("connection_errors")
            cause: BaseException = exc
            while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                cause = cause.exceptions[0]   # the task's own error, not trio's wrapper
            print(f"rtbench serve: session failed: {type(cause).__name__}: {cause}"[:300],
                  file=sys.stderr, flush=True)
            with contextlib.suppress(Exception):
                await ws.aclose(1011, "internal error")
        finally:
            # How the client left: 1000 is a clean close; 1006 a connection lost without one.
            self.stats.count(f"client_close_{ws.closed.code if ws.closed else 'none'}")
            self.stats.session_ended()

    async def _run(self, ws: wsserver.WebSocketConnection, r: Route, ordinal: int) -> None:
        injector = self.injector
        sim = SimSession(r.dialect, self.config.profile, model=r.model,
                         rng=random.Random(self.rng.random()), load=lambda: self.stats.active,
                         faults=injector.on_session(ordinal),
                         response_fault=lambda n: injector.on_response(ordinal, n),
                         azure=r.provider == "azure")
        conn = Connection(Role.SERVER, r.dialect)
        sleeper = Sleeper(self.alarms)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, ws, sim, conn, sleeper, nursery.cancel_scope,
                               lambda: self.stats.count("event_errors"))
            now = trio.current_time()
            if self.config.openai_beta_disabled and r.provider == "openai" and (
                    r.dialect is Dialect.BETA):
                self.stats.count("beta_shape_rejected")
                sim.reject_beta_shape(now)
            else:
                sim.start(now, time.time())
            await self._send_due(ws, sim, conn, sleeper)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _read(ws: wsserver.WebSocketConnection, sim: SimSession, conn: Connection,
                    sleeper: Sleeper, scope: trio.CancelScope,
                    count_error: Callable[[], None]) -> None:
        """Feed client frames to the behaviour, stamped on receipt; end when the peer closes.

        ``deliver`` calls ``receive`` in the server's read hub the moment a frame is read, so a
        frame costs no task switch; this task wakes only for pings and the close.
        """

        def receive(frame: str | bytes) -> None:
            now = trio.current_time()
            try:
                sim.receive(conn.receive(frame), now)
            except ProtocolViolation as exc:
                sim.protocol_error(now, exc.detail)
            except Exception as exc:
                count_error()
                sim.protocol_error(now, f"the event could not be processed "
                                        f"({type(exc).__name__}: {exc})"[:200])
            sleeper.wake_by(sim.next_due())  # only if that output is due before it wakes

        await ws.deliver(receive)
        scope.cancel()

    async def _send_due(self, ws: wsserver.WebSocketConnection, sim: SimSession,
                        conn: Connection, sleeper: Sleeper) -> None:
        """Sleep until the next output is due (or a client frame arrives) and send it.

        How late each wake-up is against the schedule goes to ``stats`` (the simulator's own
        lag, which bounds how far its latencies can be trusted under load).
        """
        try:
            while not sim.closed:
                due = sim.next_due()
                await sleeper.sleep_until(due)
                now = trio.current_time()
                if due is not None and now >= due:
                    self.stats.record_lateness(now - due)
                for out in sim.pop_due(now):
                    if isinstance(out, Injected):
                        self.stats.inject(out.kind, sim.session_id)
                    elif isinstance(out, Close):
                        if out.code is None:
                            await drop_tcp(ws)
                        else:
                            await ws.aclose(out.code, out.reason)
                        return
                    elif isinstance(out, Raw):
                        await ws.send_message(out.text)
                    else:
                        text = conn.send(out)
                        if text is not None:
                            await ws.send_message(text)
        except wsserver.ConnectionClosed:
            pass


async def drop_tcp(ws: wsserver.WebSocketConnection) -> None:
    """Close the TCP stream under the WebSocket with no close frame: the peer sees 1006."""
    await ws.abort()
