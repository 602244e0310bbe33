"""One timer task wakes many sleepers at their deadlines, or earlier when asked."""

from __future__ import annotations

import trio
import trio.testing

from rtbench.sim import alarms as alarms_mod
from rtbench.sim.alarms import Alarms, Sleeper


async def test_sleepers_wake_at_their_own_deadlines(autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    woke: list[tuple[int, float]] = []

    async def sleep(i: int, deadline: float | None) -> None:
        await Sleeper(alarms).sleep_until(deadline)
        woke.append((i, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        t0 = trio.current_time()
        for i, delay in enumerate([0.3, 0.1, 0.2, 0.1]):
            nursery.start_soon(sleep, i, t0 + delay)
        nursery.start_soon(sleep, 9, None)  # no deadline: sleeps until cancelled
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert {i: round(t - t0, 6) for i, t in woke} == {0: 0.3, 1: 0.1, 2: 0.2, 3: 0.1}
    assert [t for _, t in woke] == sorted(t for _, t in woke)


async def test_wake_by_cuts_a_sleep_short_only_when_due_sooner(
        autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    sleeper = Sleeper(alarms)
    woke: list[float] = []

    async def sleep_twice(t0: float) -> None:
        await sleeper.sleep_until(t0 + 5.0)
        woke.append(trio.current_time() - t0)
        await sleeper.sleep_until(t0 + 8.0)
        woke.append(trio.current_time() - t0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        t0 = trio.current_time()
        nursery.start_soon(sleep_twice, t0)
        await trio.sleep(1.0)
        sleeper.wake_by(t0 + 9.0)  # later than it sleeps until: nothing
        sleeper.wake_by(None)
        await trio.sleep(0.5)
        assert woke == []
        sleeper.wake_by(t0 + 1.6)  # sooner: now
        await trio.sleep(0.1)
        assert woke == [1.5]
        await trio.sleep(10)  # its stale 5 s entry must not wake the second sleep
        nursery.cancel_scope.cancel()
    assert woke == [1.5, 8.0]


async def test_a_cancelled_sleeper_and_stale_entries_are_dropped(
        autojump_clock: trio.testing.MockClock) -> None:
    alarms = Alarms()
    woke = 0

    async def sleep_until(deadline: float) -> None:
        nonlocal woke
        await Sleeper(alarms).sleep_until(deadline)
        woke += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarms.run)
        t0 = trio.current_time()
        with trio.CancelScope() as scope:  # cancelled while asleep: gone quietly
            scope.cancel()
            await Sleeper(alarms).sleep_until(t0 + 1.0)
        restless = Sleeper(alarms)
        for _ in range(alarms_mod._PRUNE_MIN + 10):  # each early wake leaves an hour-late entry
            async with trio.open_nursery() as one:
                one.start_soon(restless.sleep_until, t0 + 3600.0)
                await trio.sleep(0)
                restless.wake_by(t0)
        nursery.start_soon(sleep_until, t0 + 2.0)
        await trio.sleep(0.1)
        assert len(alarms._heap) < alarms_mod._PRUNE_MIN  # pruned to the live sleeper
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert woke == 1
