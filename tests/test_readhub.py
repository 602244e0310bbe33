"""The shared read hub: every ready socket's callback runs, and one round never holds the loop
for all of them at once."""

from __future__ import annotations

import socket
import time

import trio
from trio.abc import Instrument

from rtbench.ws.readhub import ROUND_S, ReadHub


class _Steps(Instrument):
    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


async def test_a_round_of_slow_callbacks_is_cut_into_steps() -> None:
    """Four sockets ready at once, each callback over the round's budget alone: each runs in a
    task step of its own (other tasks get the loop between them); all of them run."""
    steps = _Steps()
    trio.lowlevel.add_instrument(steps)
    hub = ReadHub()
    pairs = [socket.socketpair() for _ in range(4)]
    ran_in_step: list[int] = []

    def slow(sock: socket.socket) -> bool:
        sock.recv(100)
        ran_in_step.append(steps.steps)
        until = time.perf_counter() + 2 * ROUND_S
        while time.perf_counter() < until:
            pass
        return False

    for ours, _ in pairs:
        ours.setblocking(False)
        hub.register(ours.fileno(), lambda sock=ours: slow(sock))  # type: ignore[misc]
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(hub.run)
                await trio.sleep(0.01)
                for _, theirs in pairs:
                    theirs.send(b"x")          # all four ready at once
                while len(ran_in_step) < len(pairs):
                    await trio.sleep(0.001)
                nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
    assert len(set(ran_in_step)) == len(pairs), ran_in_step
