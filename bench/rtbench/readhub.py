"""Readiness of many sockets from one edge-triggered epoll, watched by one trio task.

Why: trio arms its epoll afresh for every wait (``EPOLLONESHOT``, then an ``epoll_ctl`` to
re-arm), which costs a system call per received message. Profiled at 500 simulated sessions
× 20 ms chunks, that re-arming was a sixth of the simulator's core. Here every socket is
registered once, edge-triggered, in a private epoll; one task waits in trio's loop for that
epoll's own fd and wakes the tasks whose sockets received data. A connection task still
awaits its own socket, so the code above reads as before.

Edge-triggered means one report per arrival: a socket reported while its task is busy is
remembered as ready, and the next wait returns at once. A reader that reads less than its
buffer size has drained the socket, so a later arrival is a new edge; one that filled its
buffer calls :meth:`ReadHub.more` (there may be more, and no new edge will say so). A spurious
"ready" (the data was already read) shows up as ``BlockingIOError`` on the read, and the reader
waits again.

Linux only (``select.epoll``); :func:`make_hub` returns None elsewhere and callers fall back to
trio's own waits.
"""

from __future__ import annotations

import contextlib
import select

import outcome
import trio

_FLAGS = getattr(select, "EPOLLIN", 0) | getattr(select, "EPOLLRDHUP", 0) | getattr(
    select, "EPOLLET", 0)
_MAX_EVENTS = 1024


class ReadHub:
    """``register(fd)`` once, ``await wait_readable(fd)`` per read, ``forget(fd)`` before close."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._waiting: dict[int, trio.lowlevel.Task] = {}
        self._ready: set[int] = set()

    def register(self, fd: int) -> None:
        self._epoll.register(fd, _FLAGS)
        self._ready.add(fd)  # bytes may have arrived before registration: look once

    def more(self, fd: int) -> None:
        """The last read filled its buffer: the next wait on ``fd`` returns at once."""
        self._ready.add(fd)

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (call before closing it); a task waiting on it gets
        ClosedResourceError, as trio's own waits do when a socket is closed under them."""
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)
        self._ready.discard(fd)
        task = self._waiting.pop(fd, None)
        if task is not None:
            trio.lowlevel.reschedule(task, outcome.Error(trio.ClosedResourceError("socket closed")))

    async def wait_readable(self, fd: int) -> None:
        if fd in self._ready:
            self._ready.discard(fd)
            await trio.lowlevel.checkpoint()
            return
        if fd in self._waiting:
            raise trio.BusyResourceError("another task is already reading this socket")
        self._waiting[fd] = trio.lowlevel.current_task()

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._waiting.pop(fd, None)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def run(self) -> None:
        """Wake the readers of every socket with new data, forever (cancel to stop)."""
        waiting, ready = self._waiting, self._ready
        try:
            while True:
                await trio.lowlevel.wait_readable(self._epoll.fileno())
                for fd, _ in self._epoll.poll(0, _MAX_EVENTS):
                    task = waiting.pop(fd, None)
                    if task is None:
                        ready.add(fd)
                    else:
                        trio.lowlevel.reschedule(task)
        finally:
            self._epoll.close()


def make_hub() -> ReadHub | None:
    """A hub where the platform has epoll, else None (use trio's waits)."""
    return ReadHub() if hasattr(select, "epoll") else None


__all__ = ["ReadHub", "make_hub"]
