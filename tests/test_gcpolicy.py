"""Scheduled garbage collection: automatic collection off while a loop runs, full passes
when it falls idle after work or when too long has passed, every pass timed; and sessions
that need no collector at all.

The schedule's own tests run on the autojump mock clock: its checks and deadlines are trio
sleeps, so they are exact there, and a starved test process (load 6 on two cores once kept
one past a 2 s wall-clock bound) cannot fail them.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from dataclasses import replace
from pathlib import Path

import trio
import trio.testing

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.process.gcpolicy import ScheduledGc
from rtbench.protocol import TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, Profile

from conftest import running_sim


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _garbage_cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


async def test_automatic_collection_is_off_while_running_and_restored_after(
        autojump_clock: trio.testing.MockClock) -> None:
    assert gc.isenabled()
    schedule = ScheduledGc(check_every_s=0.01)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(schedule.run)
        await trio.sleep(0.03)
        assert not gc.isenabled()
        nursery.cancel_scope.cancel()
    assert gc.isenabled()
    assert schedule.pauses.passes == 0  # never idle, never overdue: no pause at all


async def test_a_full_pass_runs_when_the_process_falls_idle_after_work(
        autojump_clock: trio.testing.MockClock) -> None:
    state = {"busy": True}
    paused: list[float] = []
    schedule = ScheduledGc(check_every_s=0.01, idle=lambda: not state["busy"],
                           on_pause=paused.append)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(schedule.run)
        await trio.sleep(0.03)
        cycle = _garbage_cycle()
        await trio.sleep(0.03)
        assert cycle() is not None  # busy: left for later
        state["busy"] = False
        with trio.fail_after(2):
            while cycle() is not None:
                await trio.sleep(0.01)
        await trio.sleep(0.05)  # still idle, nothing new to do: one pass only
        nursery.cancel_scope.cancel()
    assert schedule.pauses.passes == 1 == len(paused)
    assert schedule.pauses.collected >= 1 and schedule.pauses.max_s == paused[0] > 0


async def test_a_full_pass_runs_every_full_every_s_when_the_heap_grew(
        autojump_clock: trio.testing.MockClock) -> None:
    schedule = ScheduledGc(check_every_s=0.01, full_every_s=0.05, min_growth=1000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(schedule.run)
        await trio.sleep(0.02)
        cycle = _garbage_cycle()
        kept = [[i] for i in range(2000)]   # 2,000 new tracked objects, alive
        with trio.fail_after(2):
            while cycle() is not None:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert schedule.pauses.passes >= 1 and len(kept) == 2000
    assert schedule.pauses.as_dict()["passes"] == schedule.pauses.passes


async def test_an_overdue_pass_is_skipped_when_the_heap_did_not_grow(
        autojump_clock: trio.testing.MockClock) -> None:
    """A steady loop frees what it makes by reference counting: a timed pass would stop every
    session for nothing, so none is taken."""
    schedule = ScheduledGc(check_every_s=0.01, full_every_s=0.05, min_growth=100_000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(schedule.run)
        for _ in range(30):
            made = [[i] for i in range(1000)]   # made and freed again: no net growth
            del made
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert schedule.pauses.passes == 0


async def test_finished_sessions_leave_no_reference_cycles(scenario: Scenario,
                                                           tmp_path: Path) -> None:
    """With automatic collection off during a run, anything of ours freed only by the cyclic
    collector would pile up until the next full pass: client and simulator sessions must be
    freed by reference counting alone, the moment they end."""
    sc = replace(scenario, turns_per_session=1, trailing_silence_ms=200, think_time_ms=0,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    plans = [plan_chunks(load_utterance(sc.audio_dir / "en_timer.wav"), sc.chunk_ms)]
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage to look at
    try:
        async with running_sim(Profile(first_audio=Dist(50.0), response_audio_ms=200)) as server:
            target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m")
            store = RunStore(tmp_path, "run", {})
            await run_sessions(RunPlan(sc, [target], 3), plans, store)
            assert server.stats.counters["sessions"] == 3
        gc.collect()
        ours = Counter(type(o).__qualname__ for o in gc.garbage
                       if type(o).__module__.startswith("rtbench"))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert store.recorder.series("sim", "ttfa_ms").histogram.get_total_count() == 3
    assert ours == Counter()
