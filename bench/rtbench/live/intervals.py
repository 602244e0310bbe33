"""The interval-log watcher: writes ``intervals.hlog`` while the run goes (see
``results.intervallog`` for the log itself), each interval in a worker thread."""

from __future__ import annotations

import time

import trio

from ..results.intervallog import HLOG, INTERVAL_S, IntervalLog
from ..results.store import RunStore
from .progress import RunProgress
from .watcher import Watcher


def hlog_watcher(interval_s: float = INTERVAL_S) -> Watcher:
    async def watch(store: RunStore, progress: RunProgress, scope: trio.CancelScope) -> None:
        with open(store.dir / HLOG, "w", encoding="utf-8") as out:
            log = IntervalLog(out, store.recorder, time.time())
            t0 = trio.current_time()
            try:
                while True:
                    await trio.sleep(interval_s)
                    # Off the loop: diffing and encoding every histogram took milliseconds
                    # (numpy and zlib release the GIL), a stall every interval on the loop.
                    await trio.to_thread.run_sync(log.tick, trio.current_time() - t0)
            finally:
                # The last, partial interval: off the loop too (the run may be ending by a
                # signal while sessions still send), shielded so the cancellation waits for it.
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(log.tick, trio.current_time() - t0)

    return watch
