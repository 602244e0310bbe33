"""Shared fixtures: an in-process simulator on 127.0.0.1:0 and the repository's workload."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import trio

from rtbench.config import Scenario, load_scenario
from rtbench.sim import Profile, SimConfig, SimServer

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
