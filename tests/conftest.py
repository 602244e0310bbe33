"""Shared fixtures: an in-process simulator on 127.0.0.1:0 and the repository's workload."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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


@pytest.fixture
def sim() -> Callable[..., object]:
    return running_sim
