"""Load models: closed with reconnects (soak), open arrivals with late/dropped starts, retries."""

from __future__ import annotations

import functools
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from rtbench.client.engine import DROPPED, RunPlan, run_sessions
from rtbench.client.loadmodel import LoadModel, closed_start_offsets, open_arrival_offsets
from rtbench.client.workload import ChunkPlan, load_utterance, plan_chunks
from rtbench.config.scenario import ConfigError, Scenario, Target
from rtbench.protocol import TurnDetection
from rtbench.results.store import RunStore, load_sessions
from rtbench.results.summary import summarize
from rtbench.sim import Dist, Profile

from conftest import memory_sim, running_sim

MEMORY_TARGET = Target(name="sim", url="ws://sim.invalid/v1/realtime?model=m")  # dialled in memory
FAST = Profile(first_audio=Dist(250.0), response_audio_ms=200, realtime_factor=4.0)


def quick(scenario: Scenario, turns: int = 1) -> Scenario:
    return replace(scenario, turns_per_session=turns, trailing_silence_ms=250, think_time_ms=0,
                   session=replace(scenario.session,
                                   turn_detection=TurnDetection(silence_duration_ms=200)))


@functools.cache
def _timer(audio_dir: Path, chunk_ms: int) -> ChunkPlan:
    return plan_chunks(load_utterance(audio_dir / "en_timer.wav"), chunk_ms)


def plans(sc: Scenario) -> list[ChunkPlan]:
    return [_timer(sc.audio_dir, sc.chunk_ms)]


def test_arrival_schedules() -> None:
    assert closed_start_offsets(LoadModel(sessions=4, ramp_up_s=2.0)) == [0.0, 0.5, 1.0, 1.5]
    const = list(open_arrival_offsets(LoadModel(kind="open", rate_per_s=4, total_sessions=5)))
    assert const == [0.0, 0.25, 0.5, 0.75, 1.0]
    poisson = list(open_arrival_offsets(LoadModel(kind="open", rate_per_s=100, duration_s=50,
                                                  arrival="poisson", seed=3)))
    assert 4500 < len(poisson) < 5500  # ~rate x duration
    with pytest.raises(ConfigError, match="needs --rate"):
        LoadModel(kind="open")
    with pytest.raises(ConfigError, match="needs --duration or --total-sessions"):
        LoadModel(kind="open", rate_per_s=1)


async def test_open_model_records_intended_starts_and_drops_over_the_cap(
    autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path
) -> None:
    sc = quick(scenario)
    model = LoadModel(kind="open", sessions=2, rate_per_s=10, total_sessions=8)
    async with memory_sim(FAST) as (_, connect):
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(60):
            await run_sessions(RunPlan(sc, [MEMORY_TARGET], 2, model), plans(sc), store,
                               connect=connect)
    turns, errors = store.finalize("complete")
    sessions = load_sessions(store.dir)
    assert len(sessions) == 8
    assert sorted(sessions["intended_start_s"]) == pytest.approx(
        [i * 0.1 for i in range(8)], abs=1e-6)
    started = sessions[sessions["status"] != "dropped"]
    dropped = sessions[sessions["status"] == "dropped"]
    # each session lasts > 1 s, arrivals every 0.1 s, cap 2: only the first two start
    assert len(started) == 2 and len(dropped) == 6
    assert store.recorder.counters[DROPPED] == 6
    assert started["start_lag_ms"].tolist() == [0.0, 0.0]  # mock clock: on time, exactly
    summary = summarize(turns, errors, store.recorder,
                        [{"name": "sim", "region": "local", "model": "m", "sessions": 2}], 1,
                        sessions)
    assert summary.loc[0, "dropped"] == 6 and summary.loc[0, "sessions"] == 2


async def test_retries_are_explicit_and_counted_apart(scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(quick(scenario), connect_timeout_s=2)
    # nothing listens on this port: a retryable connect failure every time
    async with running_sim(FAST) as server:
        dead_port = server.port
    target = Target(name="sim", url=f"ws://127.0.0.1:{dead_port}/v1/realtime?model=m")
    store = RunStore(tmp_path, "run", {})
    model = LoadModel(sessions=2, retries=2, backoff_s=0.01, backoff_max_s=0.02)
    with trio.fail_after(20):
        await run_sessions(RunPlan(sc, [target], 2, model), plans(sc), store)
    turns, errors = store.finalize("complete")
    sessions = load_sessions(store.dir)
    assert sorted(sessions["attempt"]) == [0, 0, 1, 1, 2, 2]
    assert sessions["retried"].sum() == 4  # the last attempts are not retried
    assert (errors["phase"] == "connect").all() and len(errors) == 6
    assert sorted(errors["attempt"]) == [0, 0, 1, 1, 2, 2]
    assert store.recorder.series("sim", "connect_ms").histogram.get_total_count() == 0
    summary = summarize(turns, errors, store.recorder,
                        [{"name": "sim", "region": "local", "model": "m", "sessions": 2}], 1,
                        sessions)
    assert summary.loc[0, "retries"] == 4 and summary.loc[0, "sessions"] == 2
    assert summary.loc[0, "error_rate"] == 1.0


async def test_no_retry_by_default_and_none_for_fatal_errors(
    scenario: Scenario, tmp_path: Path
) -> None:
    sc = quick(scenario)
    async with running_sim(FAST, api_key="k") as server:
        target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        model = LoadModel(sessions=2, retries=3, backoff_s=0.01)
        await run_sessions(RunPlan(sc, [target], 2, model), plans(sc), store)
    store.finalize("complete")
    sessions = load_sessions(store.dir)
    assert len(sessions) == 2 and not sessions["retried"].any()  # 401 is fatal
    assert set(sessions["severity"]) == {"fatal"}


async def test_soak_reconnects_on_expiry_and_memory_stays_flat(
    autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path
) -> None:
    # in memory on the mock clock: 8 s of soak in well under a second of wall time; the memory
    # measured is the same client and simulator code's
    sc = quick(scenario, turns=1000)
    expiring = replace(FAST, session_max_s=3.5)  # one ~2.5 s turn fits, the second expires
    async with memory_sim(expiring) as (_, connect):
        target = MEMORY_TARGET
        store = RunStore(tmp_path, "run", {})
        model = LoadModel(sessions=3, duration_s=8.0)
        tracemalloc.start()
        try:
            async with trio.open_nursery() as nursery:
                samples: list[int] = []

                async def sample() -> None:
                    await trio.sleep(3.0)
                    samples.append(tracemalloc.get_traced_memory()[0])
                    await trio.sleep(4.5)
                    samples.append(tracemalloc.get_traced_memory()[0])

                nursery.start_soon(sample)
                await run_sessions(RunPlan(sc, [target], 3, model), plans(sc), store,
                                   connect=connect)
        finally:
            tracemalloc.stop()
    turns, errors = store.finalize("complete")
    sessions = load_sessions(store.dir)
    assert len(sessions) >= 6  # each slot reconnected after every 3.5 s expiry
    assert (errors["code"] == "session_expired").sum() >= 3
    assert (turns["status"] == "ok").sum() >= 6
    growth = samples[1] - samples[0]
    assert growth < 2_000_000, f"memory grew {growth} bytes between 3 s and 7.5 s"
