"""Drive a pool of shards (local processes or Ray actors) through one run, then merge.

The steps are the same whatever runs the shards: launch them, wait until every one is ready
(imports done, actor placed), pick a start instant a little in the future, start them all,
print progress, forward a stop (Ctrl-C / SIGTERM to the parent) to every shard, collect what
each returns and merge it into the run's store. ``execute`` then writes tables and
``summary.csv`` once, from the merged data.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Protocol

from ..client.engine import RunPlan
from ..client.shard import shards
from ..client.workload import ChunkPlan
from ..config.scenario import ConfigError
from ..results.store import RunStore
from . import syncstart
from .merge import ShardResult, failure_lines, manifest_entry, merge_into
from .shardrun import ShardSpec

POLL_S = 0.02
#: A failed shard makes the run ``partial``; ``stopped_by`` then says why (unless a signal did).
SHARD_FAILURE = "shard_failure"
STARTUP_FAILURE = "startup_failure"


class ShardPool(Protocol):
    noun: str    # how shards are named on the console ("worker", "shard")
    kind: str    # recorded in the manifest ("processes", "ray")

    def launch(self, specs: Sequence[ShardSpec]) -> None: ...

    def ready(self) -> bool:
        """Every shard is ready to start (or already gone)."""
        ...

    def start(self, start_wall: float) -> None: ...

    def done(self) -> bool: ...

    def progress(self) -> list[tuple[int, int]]:
        """(turns, errors) per shard, as last reported."""
        ...

    def stop(self, reason: str) -> None: ...

    def results(self) -> list[ShardResult]: ...

    def close(self) -> None: ...


@contextmanager
def _stop_on_signals(stopped_by: list[str]) -> Iterator[list[str]]:
    """SIGINT/SIGTERM append their name to ``stopped_by`` (and the yielded list of pending stops)
    instead of raising; a no-op off the main thread (where handlers cannot be set)."""
    pending: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not stopped_by:
            print(f"rtbench: {name} received, stopping and writing results", file=sys.stderr,
                  flush=True)
        stopped_by.append(name)
        pending.append(name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def format_progress(noun: str, progress: Sequence[tuple[int, int]]) -> str:
    turns = sum(t for t, _ in progress)
    errors = sum(e for _, e in progress)
    each = ", ".join(f"{noun[0]}{i} {t}/{e}" for i, (t, e) in enumerate(progress))
    return f"progress: {turns} turns, {errors} errors ({noun} turns/errors: {each})"


def drive(pool: ShardPool, count: int, plan: RunPlan, plans: Sequence[ChunkPlan], store: RunStore,
          stopped_by: list[str], *, lead_s: float, ready_timeout_s: float,
          progress_s: float) -> None:
    """Run ``plan`` as ``count`` shards on ``pool`` and merge their results into ``store``."""
    specs = [ShardSpec(replace(plan, shard=s), list(plans)) for s in shards(count)]
    start_wall: float | None = None
    with _stop_on_signals(stopped_by) as pending:
        try:
            try:
                pool.launch(specs)
                deadline = time.monotonic() + ready_timeout_s
                while not pool.ready() and not pending:
                    if time.monotonic() > deadline:
                        raise ConfigError(f"{count} {pool.noun}s were not ready after "
                                          f"{ready_timeout_s:g} s (each needs a free CPU)")
                    time.sleep(POLL_S)
            except ConfigError:
                stopped_by.append(STARTUP_FAILURE)  # the run directory is then ``partial``
                raise
            start_wall = syncstart.pick_start(lead_s)
            pool.start(start_wall)
            forwarded = 0
            next_progress = time.monotonic() + progress_s
            while not pool.done():
                if len(pending) > forwarded:
                    pool.stop(pending[forwarded])
                    forwarded = len(pending)
                if time.monotonic() >= next_progress:
                    print(format_progress(pool.noun, pool.progress()), file=sys.stderr, flush=True)
                    next_progress += progress_s
                time.sleep(POLL_S)
            results = pool.results()
        finally:
            pool.close()
    merge_into(store, results)
    store.update_manifest(workers=manifest_entry(pool.kind, start_wall, results))
    for line in failure_lines(results, pool.noun):
        print(line, file=sys.stderr, flush=True)
    if any(r.histograms is None for r in results) and not stopped_by:
        stopped_by.append(SHARD_FAILURE)
