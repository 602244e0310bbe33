"""A simulator in a background thread with its own trio loop, for clients that run asyncio."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from rtbench.sim import Profile, SimConfig, SimServer


@contextmanager
def sim_in_thread(profile: Profile, **kw: Any) -> Iterator[SimServer]:
    """Serve on 127.0.0.1:0 in a thread; cancel its loop and join on exit."""
    ready: queue.Queue[tuple[SimServer, trio.lowlevel.TrioToken, trio.CancelScope]] = queue.Queue()
    failed: list[BaseException] = []

    async def main() -> None:
        server = SimServer(SimConfig(port=0, profile=profile, seed=1, **kw))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            ready.put((server, trio.lowlevel.current_trio_token(), nursery.cancel_scope))

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # surfaced to the test below
            failed.append(exc)

    thread = threading.Thread(target=run, name="sim", daemon=True)
    thread.start()
    server, token, scope = ready.get(timeout=10)
    try:
        yield server
    finally:
        trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(timeout=10)
        assert not thread.is_alive() and not failed, failed
