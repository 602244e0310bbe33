"""Hostile targets beside a good one: each failure becomes rows of its own sessions, the good
target keeps every turn, nothing hangs and nothing is raised out of the run.

Rules: hostile servers listen on 127.0.0.1, port 0, and stop with the test; the good target is
the simulator in memory (``conftest.memory_sim``); every run is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from rtbench.client import transport
from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.results.store import RunStore, load_sessions
from rtbench.sim import Dist, Profile
from rtbench.ws.client import MAX_REFUSAL_BODY, WsClient

from conftest import memory_sim

Handler = Callable[[trio.SocketStream], Awaitable[None]]


async def _read_request(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    return data


async def garbage(stream: trio.SocketStream) -> None:
    await _read_request(stream)
    await stream.send_all(b"HELLO THERE\r\n\r\n")


async def bad_accept(stream: trio.SocketStream) -> None:
    await _read_request(stream)
    await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n")


SENT: list[int] = []     # bytes of body each endless refusal got out before the client hung up


async def endless_refusal(stream: trio.SocketStream) -> None:
    await _read_request(stream)
    SENT.append(0)
    await stream.send_all(b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    try:
        for _ in range(4096):          # 256 MiB at most: the client must stop long before
            await stream.send_all(frame)
            SENT[-1] += len(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


@asynccontextmanager
async def hostile(handler: Handler) -> AsyncIterator[int]:
    async def guarded(stream: trio.SocketStream) -> None:
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, guarded, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


GOOD = Target(name="good", url="ws://sim.invalid/v1/realtime?model=m")


async def _run_beside_good(tmp_path: Path, sc: Scenario, bad: Target,
                           connect_bad: Callable[[Target, float],
                                                 AbstractAsyncContextManager[WsClient]]):
    plans = [plan_chunks(load_utterance(sc.audio_dir / f"{u}.wav"), sc.chunk_ms)
             for u in sc.utterances[:1]]
    store = RunStore(tmp_path, "run", {})
    profile = Profile(first_audio=Dist(20.0), response_audio_ms=100, realtime_factor=8.0)
    async with memory_sim(profile) as (_, connect_good):
        def connect(target: Target, timeout_s: float) -> AbstractAsyncContextManager[WsClient]:
            return connect_good(target, timeout_s) if target.name == "good" else connect_bad(
                target, timeout_s)

        with trio.fail_after(60):
            await run_sessions(RunPlan(sc, [GOOD, bad], 4), plans, store, connect=connect)
    turns, errors = store.finalize("complete")
    return turns, errors, load_sessions(store.dir), store


@pytest.mark.parametrize("handler, code", [
    (garbage, "handshake_error"), (bad_accept, "handshake_error"), (endless_refusal, "401"),
], ids=["garbage", "bad-accept", "endless-refusal"])
async def test_a_broken_upgrade_is_rows_of_its_sessions(
        short_scenario: Scenario, tmp_path: Path, handler: Handler, code: str) -> None:
    sc = replace(short_scenario, turns_per_session=1, connect_timeout_s=20.0)
    async with hostile(handler) as port:
        bad = Target(name="bad", url=f"ws://127.0.0.1:{port}/v1/realtime?model=m")
        turns, errors, sessions, _ = await _run_beside_good(tmp_path, sc, bad,
                                                            transport.open_connection)
    assert (turns["target"] == "good").all() and len(turns) == 2
    assert (turns["status"] == "ok").all()
    bad_rows = errors[errors["target"] == "bad"]
    assert len(bad_rows) == 2 and set(bad_rows["code"]) == {code}, bad_rows.to_dict("records")
    assert (bad_rows["phase"] == "connect").all()
    assert bad_rows["message"].str.len().max() <= 500
    assert set(sessions[sessions["target"] == "bad"]["status"]) == {"failed"}
    if handler is endless_refusal:   # the client read a bounded prefix and hung up
        assert len(SENT) == 2 and max(SENT) < MAX_REFUSAL_BODY + 16 * 2**20, SENT


async def test_an_unexpected_exception_is_a_crash_row_of_that_session_only(
        short_scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(short_scenario, turns_per_session=2)

    def explode(target: Target, timeout_s: float) -> AbstractAsyncContextManager[WsClient]:
        raise ZeroDivisionError("a bug in rtbench")

    bad = Target(name="crashy", url="ws://crashy.invalid/v1/realtime?model=m")
    turns, errors, sessions, store = await _run_beside_good(tmp_path, sc, bad, explode)
    assert len(turns) == 4 and (turns["status"] == "ok").all()      # the good target: all
    crash = errors[errors["kind"] == "crash"]
    assert len(crash) == 2 and set(crash["code"]) == {"ZeroDivisionError"}
    assert set(crash["target"]) == {"crashy"} and set(crash["severity"]) == {"fatal"}
    assert set(sessions[sessions["target"] == "crashy"]["status"]) == {"failed"}
    assert store.crashes == 2


async def test_a_message_in_the_same_segment_as_the_101_reaches_the_reader() -> None:
    """Services send session.created right behind the 101; often in one TCP segment."""
    import base64
    import hashlib

    from rtbench.ws.client import connect

    async def upgrade_and_greet(stream: trio.SocketStream) -> None:
        request = await _read_request(stream)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        greeting = b'{"type": "session.created"}'
        await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                              b"\r\n\r\n" + bytes([0x81, len(greeting)]) + greeting +
                              bytes([0x88, 2, 0x03, 0xE8]))
        await trio.sleep(5)

    got: list[str | bytes] = []
    async with hostile(upgrade_and_greet) as port:
        with trio.fail_after(10):
            ws = await connect(f"ws://127.0.0.1:{port}/", headers=[], ssl_context=None,
                               max_message_bytes=2**20)
            async with trio.open_nursery() as nursery:
                ws.attach(nursery)
                closed = await ws.receive_into(lambda message, t: got.append(message))
    assert got == ['{"type": "session.created"}'] and closed.code == 1000
