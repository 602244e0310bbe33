"""Readiness of many sockets from one edge-triggered epoll, handled by one trio task.

Why: trio arms its epoll afresh for every wait (``EPOLLONESHOT``, then an ``epoll_ctl`` to
re-arm), which costs a system call per received message. Profiled at 500 simulated sessions
× 20 ms chunks, that re-arming was a sixth of the simulator's core. Waking a task per message
cost a task switch per message as well: at 740 sessions × 20 ms (37,000 messages a second)
calling back instead took the simulator from 80–88 % of its core to 69–71 %. Here every socket
is registered once, edge-triggered, in a private epoll; one task waits in trio's loop for that
epoll's own fd and calls each ready socket's callback, synchronously, in its own task.

Edge-triggered means one report per arrival, so a callback reads until the socket is drained
(a read shorter than its buffer, or ``BlockingIOError``); the next arrival is a new edge. To be
fair, a callback may stop early and return True ("more to read"): the hub calls it again on
its next round, after every other ready socket and after letting other tasks run, so one
peer sending far faster than real time cannot starve the rest; and a round ends after
:data:`ROUND_S`, so that many ready sockets cannot hold the loop either. A callback must not
block and must not raise (it runs in the hub's task: an exception would stop every socket).
Callbacks that need to await hand the work to a task of their own.

Linux only (``select.epoll``); :func:`make_hub` returns None elsewhere and callers fall back to
trio's own waits.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections import deque
from collections.abc import Callable

import trio

_FLAGS = getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLRDHUP", 0) | getattr(
    select, "EPOLLET", 0)
_MAX_EVENTS = 1024
#: The longest one round of callbacks holds the loop before other tasks run.
ROUND_S = 0.0005
#: Reads of one socket per callback (64 KiB each): past that the callback returns True and the
#: other sockets go first.
MAX_READS_PER_WAKEUP = 4


class ReadHub:
    """``register(fd, callback)`` once; ``forget(fd)`` before closing it; ``await run()``."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[], bool | None]] = {}

    def register(self, fd: int, callback: Callable[[], bool | None]) -> None:
        """Call ``callback()`` whenever ``fd`` receives data (or its peer hangs up)."""
        self._callbacks[fd] = callback
        self._epoll.register(fd, _FLAGS)

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (call before closing it)."""
        self._callbacks.pop(fd, None)
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)

    async def run(self) -> None:
        """Call the callbacks of every socket with new data, forever (cancel to stop).

        One round runs callbacks for at most :data:`ROUND_S`, then lets other tasks run before
        the sockets still waiting their turn: at hundreds of ready sockets a single round held
        the loop for milliseconds, and a pacer waiting behind it sent every chunk late.
        """
        callbacks = self._callbacks
        waiting: deque[int] = deque()    # ready sockets whose callback has not run (or asked
        queued: set[int] = set()         # to run again), in order; the same fds as a set
        try:
            while True:
                if waiting:
                    await trio.lowlevel.checkpoint()    # everyone else first
                else:
                    await trio.lowlevel.wait_readable(self._epoll.fileno())
                for fd, _ in self._epoll.poll(0, _MAX_EVENTS):
                    if fd not in queued:
                        queued.add(fd)
                        waiting.append(fd)
                started = time.perf_counter()
                for _ in range(len(waiting)):
                    fd = waiting.popleft()
                    callback = callbacks.get(fd)
                    if callback is not None and callback():
                        waiting.append(fd)
                    else:
                        queued.discard(fd)
                    if time.perf_counter() - started > ROUND_S:
                        break
        finally:
            self._epoll.close()


def make_hub() -> ReadHub | None:
    """A hub where the platform has epoll, else None (use trio's waits)."""
    return ReadHub() if hasattr(select, "epoll") else None


__all__ = ["MAX_READS_PER_WAKEUP", "ROUND_S", "ReadHub", "make_hub"]
