"""Shared fixtures: an in-process simulator on 127.0.0.1:0 and the repository's workload."""

from __future__ import annotations

import functools
import gc
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import trio

from rtbench.client import transport
from rtbench.client.transport import Connect
from rtbench.config.scenario import Scenario, load_scenario
from rtbench.protocol import Connection, Dialect, Event, Role
from rtbench.sim import Profile, SimConfig, SimServer

from referee import Referee, adapter

# The SDK models behind the referee add ~130k long-lived objects; a full garbage collection
# then stops the process for ~50 ms (vs ~18 ms without), which lands in timing tests as
# latency. Build the adapters now and move everything loaded so far out of the collector.
adapter(Dialect.GA)
adapter(Dialect.BETA)
gc.freeze()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = REPO / "workloads" / "default.toml"


@pytest.fixture
def scenario() -> Scenario:
    return load_scenario(DEFAULT_SCENARIO)


@asynccontextmanager
async def running_sim(profile: Profile, **kw: object) -> AsyncIterator[SimServer]:
    """Start a simulator on an ephemeral loopback port; stop it on exit."""
    options: dict[str, object] = {"seed": 1, **kw}
    server = SimServer(SimConfig(port=0, profile=profile, **options))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def memory_sim(profile: Profile, **kw: object) -> AsyncIterator[tuple[SimServer, Connect]]:
    """A simulator with no socket and the ``connect`` that reaches it in memory.

    Sessions given that ``connect`` run the real client and server code over an in-memory
    stream (``rtbench.ws.memory``); on the ``autojump_clock`` fixture no time passes but the
    latencies the profile injects, so timing is asserted exactly.
    """
    options: dict[str, object] = {"seed": 1, **kw}
    server = SimServer(SimConfig(profile=profile, **options))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        dial = await nursery.start(server.serve_in_memory)
        yield server, functools.partial(transport.open_connection, dial=dial)
        nursery.cancel_scope.cancel()


@contextmanager
def sim_process(*args: str) -> Iterator[int]:
    """``rtbench serve --port 0 ARGS`` in a child process (its own core); yields its port.

    Timing-accuracy tests use this so the simulator's work does not share the client's loop.
    """
    proc = subprocess.Popen([sys.executable, "-m", "rtbench", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def sim() -> Callable[..., object]:
    return running_sim


REFEREE = Referee()


@pytest.fixture(autouse=True)
def referee(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Referee]:
    """Every event a simulator in this process sends is validated with the openai SDK models.

    Wraps the sans-IO ``Connection.send`` (server role), so in-process servers, threads and
    the sans-IO driver are all covered; frames sent raw on purpose (malformed JSON) are not.
    """
    if request.node.get_closest_marker("toy_server_events"):
        yield REFEREE  # the test sends hand-made server events, not the simulator's
        return
    original = Connection.send

    def send(self: Connection, event: Event) -> str | None:
        text = original(self, event)
        if text is not None and self.role is Role.SERVER:
            REFEREE.observe(self.dialect, text)
        return text

    monkeypatch.setattr(Connection, "send", send)
    yield REFEREE
    failures = REFEREE.check()
    assert not failures, "simulator sent events the openai SDK rejects:\n" + "\n".join(
        failures[:20])
