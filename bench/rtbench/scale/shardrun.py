"""Run one shard in this process: wait for the common start, drive its sessions, journal them.

The same code serves a local worker process (main thread: SIGINT/SIGTERM stop it) and a Ray
actor (a thread of the actor: the driver calls :meth:`ShardRun.stop`). Either way the shard
writes an ordinary run directory of its own (``w<index>/``: journals flushed per row, then
tables and ``histograms.json``), so a shard that dies keeps what it journaled and one that is
stopped still finalizes a ``partial`` result.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from ..client.engine import RunPlan, run_sessions
from ..client.workload import ChunkPlan
from ..config.secrets import Redactor
from ..process.gcpolicy import freeze_baseline
from ..results.store import RunStore
from . import syncstart

STOP_POLL_S = 0.02


def shard_dir_name(index: int) -> str:
    return f"w{index}"


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """Everything a shard needs, picklable (sent to a worker's stdin or to a Ray actor)."""

    plan: RunPlan            # with ``shard`` set
    plans: Sequence[ChunkPlan]

    @property
    def index(self) -> int:
        return self.plan.shard.index


@dataclass(slots=True)
class ShardReport:
    """How one shard went; ``status`` is ``complete``, ``partial`` (stopped) or ``failed``."""

    index: int
    status: str
    host: str = ""
    pid: int = 0
    start_skew_ms: float | None = None
    turns: int = 0
    errors: int = 0
    stopped_by: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ShardRun:
    """One shard, run to the end (or until stopped); progress readable from other threads."""

    def __init__(self, spec: ShardSpec, out_root: Path) -> None:
        self.spec = spec
        self.out_root = out_root
        self.store: RunStore | None = None
        self._stop = threading.Event()
        self._stopped_by: list[str] = []

    @property
    def dir(self) -> Path:
        return self.out_root / shard_dir_name(self.spec.index)

    def progress(self) -> tuple[int, int]:
        """(turns journaled, errors journaled) so far."""
        store = self.store
        return (store.turn_count, store.error_count) if store else (0, 0)

    def stop(self, reason: str) -> None:
        """Ask the shard to stop at once (any thread); it still writes a partial result."""
        if not self._stop.is_set():
            self._stopped_by.append(reason)
            self._stop.set()

    def run(self, start_wall: float, *, signals: bool) -> ShardReport:
        """Run to the end; ``signals``: SIGINT/SIGTERM stop the shard (main thread only)."""
        shard = self.spec.plan.shard
        report = ShardReport(shard.index, "running", socket.gethostname(), os.getpid())
        self.store = store = RunStore(self.out_root, shard_dir_name(shard.index), {
            "shard": shard.index, "shards": shard.count, "host": report.host, "pid": report.pid,
            "started_at": dt.datetime.now(dt.UTC).isoformat()}, Redactor(self.spec.plan.targets))
        skew: list[float] = []
        try:
            freeze_baseline()
            trio.run(self._main, start_wall, signals, skew)
        finally:
            stopped_by = self._stopped_by[0] if self._stopped_by else None
            report.status = "partial" if stopped_by else "complete"
            report.stopped_by = stopped_by
            report.start_skew_ms = skew[0] if skew else None
            store.finalize(report.status, stopped_by=stopped_by, start_skew_ms=report.start_skew_ms,
                           finished_at=dt.datetime.now(dt.UTC).isoformat())
            report.turns, report.errors = store.turn_count, store.error_count
        return report

    async def _main(self, start_wall: float, signals: bool, skew: list[float]) -> None:
        async with trio.open_nursery() as nursery:
            if signals:
                nursery.start_soon(self._watch_signals, nursery.cancel_scope)
            nursery.start_soon(self._watch_stop, nursery.cancel_scope)
            skew.append(await syncstart.wait_for(start_wall))
            assert self.store is not None
            await run_sessions(self.spec.plan, self.spec.plans, self.store)
            nursery.cancel_scope.cancel()

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.stop(signal.Signals(signum).name)
                scope.cancel()
                return

    async def _watch_stop(self, scope: trio.CancelScope) -> None:
        # A threading.Event, polled: stop() may come from a Ray actor thread or a pipe reader.
        while not self._stop.is_set():
            await trio.sleep(STOP_POLL_S)
        scope.cancel()
