"""Scheduled garbage collection: automatic collection off while a loop runs, full passes
when it falls idle after work or when too long has passed, every pass timed."""

from __future__ import annotations

import gc
import weakref

import trio

from rtbench.gcpolicy import ScheduledGc


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _garbage_cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


async def test_automatic_collection_is_off_while_running_and_restored_after() -> None:
    assert gc.isenabled()
    schedule = ScheduledGc(check_every_s=0.01)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(schedule.run)
        await trio.sleep(0.03)
        assert not gc.isenabled()
        nursery.cancel_scope.cancel()
    assert gc.isenabled()
    assert schedule.pauses.passes == 0  # never idle, never overdue: no pause at all


async def test_a_full_pass_runs_when_the_process_falls_idle_after_work() -> None:
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


async def test_a_full_pass_runs_at_the_latest_every_full_every_s() -> None:
    schedule = ScheduledGc(check_every_s=0.01, full_every_s=0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(schedule.run)
        await trio.sleep(0.02)
        cycle = _garbage_cycle()
        with trio.fail_after(2):
            while cycle() is not None:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert schedule.pauses.passes >= 1
    assert schedule.pauses.as_dict()["passes"] == schedule.pauses.passes
