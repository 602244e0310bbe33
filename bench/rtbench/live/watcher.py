"""The type of a live watcher: a task started beside the sessions with the run's store and
live counters (progress display, interval log, abort-on-fail; see ``client.engine.Monitor``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ..results.store import RunStore
from .progress import RunProgress

Watcher = Callable[[RunStore, RunProgress, trio.CancelScope], Awaitable[None]]
