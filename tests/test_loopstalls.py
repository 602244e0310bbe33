"""The loop-stall instrument: which task held the event loop, and for how long at a time."""

from __future__ import annotations

import time

import pytest
import trio

from rtbench.process.loopstalls import LoopStalls


def test_a_blocking_step_is_named_and_timed_and_short_steps_are_only_counted() -> None:
    stalls = LoopStalls(threshold_s=0.001)

    async def blocks_the_loop() -> None:
        time.sleep(0.03)   # synchronous work inside one step: every other task waits

    async def yields_often() -> None:
        for _ in range(50):
            await trio.lowlevel.checkpoint()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(yields_often)
            nursery.start_soon(blocks_the_loop)

    trio.run(main, instruments=[stalls])
    report = stalls.as_dict()
    assert report["steps"] >= 50 and report["over_threshold"] >= 1
    ours = [t for t in report["tasks"] if t["task"].endswith("blocks_the_loop")]
    assert len(ours) == 1 and ours[0]["worst_ms"] >= 30.0 and ours[0]["over_threshold"] == 1
    assert report["worst_ms"] >= 30.0   # no step can be longer than the loop was held
    assert report["threshold_ms"] == 1.0
    # os.times() counts in clock ticks (10 ms): a short run may read 0 CPU, never negative
    assert report["wall_s"] >= 0.03 and 0.0 <= report["cpu_s"] < report["wall_s"] + 1.0
    assert report["cpu_s"] == pytest.approx(report["cpu_user_s"] + report["cpu_system_s"],
                                            abs=0.002)
    # time.sleep holds the loop without using the CPU: it reads as preemption, not work
    assert ours[0]["worst_cpu_ms"] < 15.0 and report["preempted"] >= 1


def test_names_lose_only_the_package_prefix() -> None:
    stalls = LoopStalls()
    stalls.by_task["rtbench.client.pacer.Pacer.run"] = [0.002, 0.0005, 3, 1.5]
    assert stalls.as_dict()["worst_task"] == "client.pacer.Pacer.run"
    assert stalls.as_dict()["tasks"][0] == {"task": "client.pacer.Pacer.run", "worst_ms": 2.0,
                                            "worst_cpu_ms": 0.5, "over_threshold": 3,
                                            "worst_at_s": 1.5}
