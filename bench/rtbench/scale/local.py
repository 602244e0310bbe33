"""Shards as local worker processes (``--workers N``), each with its own trio loop and core.

Talking to a worker is a pipe pair, one JSON object per line on its stdout (``ready``,
``progress``, ``report``) and lines on its stdin: the pickled :class:`ShardSpec`, then the start
instant, then (optionally) ``stop <reason>``. Workers run in their own session, so a terminal's
Ctrl-C reaches only the parent, which forwards it as ``stop``; a worker whose stdin closes (the
parent died) stops too. Each writes ``<run>/workers/w<i>/``; the parent merges those.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ..client.engine import RunPlan
from ..client.workload import ChunkPlan
from ..config.scenario import ConfigError
from ..orchestrate.execute import Runner
from ..results.store import SHARDS_DIR, RunStore
from .merge import ShardResult
from .shardrun import ShardReport, ShardSpec, shard_dir_name

#: After a stop, a worker that has not finalized within this many seconds is killed.
KILL_AFTER_S = 10.0


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    ready: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int] = (0, 0)
    report: dict[str, Any] | None = None
    reader: threading.Thread | None = None

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if "ready" in msg:
                self.ready.set()
            elif "progress" in msg:
                self.progress = (int(msg["progress"][0]), int(msg["progress"][1]))
            elif "report" in msg:
                self.report = msg["report"]

    def send(self, line: str) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        try:
            if stdin is not None and not stdin.closed:
                stdin.write(line.encode() + b"\n")
                stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker is gone; its exit status tells


def _exit_reason(rc: int | None) -> str:
    if rc is None:
        return "did not exit"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc} without a report"


class ProcessPool:
    """A :class:`~rtbench.scale.driver.ShardPool` of local processes."""

    noun = "worker"
    kind = "processes"

    def __init__(self, out_root: Path) -> None:
        self.out_root = out_root
        self.workers: list[_Worker] = []
        self._kill_at: float | None = None

    def launch(self, specs: Sequence[ShardSpec]) -> None:
        try:
            payloads = [pickle.dumps(spec) for spec in specs]
        except Exception as exc:  # e.g. an Entra credential object that cannot be pickled
            raise ConfigError(f"cannot hand the run to worker processes: {exc}") from None
        self.out_root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for spec in specs:
            proc = subprocess.Popen([sys.executable, "-m", "rtbench.scale.worker_main", str(self.out_root)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                    start_new_session=True)
            self.workers.append(_Worker(spec.index, proc))
        for w, payload in zip(self.workers, payloads, strict=True):
            w.reader = threading.Thread(target=w.read, daemon=True, name=f"rtbench-w{w.index}")
            w.reader.start()
            try:
                assert w.proc.stdin is not None
                w.proc.stdin.write(payload)
                w.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def ready(self) -> bool:
        return all(w.ready.is_set() or w.proc.poll() is not None for w in self.workers)

    def start(self, start_wall: float) -> None:
        for w in self.workers:
            w.send(repr(start_wall))

    def done(self) -> bool:
        alive = [w for w in self.workers if w.proc.poll() is None]
        if alive and self._kill_at is not None and time.monotonic() > self._kill_at:
            for w in alive:
                w.proc.kill()
        return not alive

    def progress(self) -> list[tuple[int, int]]:
        return [w.progress for w in self.workers]

    def stop(self, reason: str) -> None:
        for w in self.workers:
            w.send(f"stop {reason}")
        if self._kill_at is None:
            self._kill_at = time.monotonic() + KILL_AFTER_S

    def results(self) -> list[ShardResult]:
        out = []
        for w in self.workers:
            if w.reader is not None:
                w.reader.join(timeout=5)
            if w.report is not None:
                report = ShardReport(**w.report)
            else:
                report = ShardReport(w.index, "failed", pid=w.proc.pid,
                                     message=_exit_reason(w.proc.poll()))
            out.append(ShardResult.from_dir(report, self.out_root / shard_dir_name(w.index)))
        return out

    def close(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
            for pipe in (w.proc.stdin, w.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


#: Sub-directory of the run that holds one directory per shard.
#: Workers are already imported and waiting when the start is picked: a short lead suffices.
LOCAL_LEAD_S = 0.25
READY_TIMEOUT_S = 120.0
PROGRESS_S = 5.0


def local_runner(count: int) -> Runner:
    """A :data:`rtbench.orchestrate.execute.Runner` that drives ``count`` local worker processes."""
    from .driver import drive

    def run(plan: RunPlan, plans: list[ChunkPlan], store: RunStore, stopped_by: list[str]) -> None:
        drive(ProcessPool(store.dir / SHARDS_DIR), count, plan, plans, store, stopped_by,
              lead_s=LOCAL_LEAD_S, ready_timeout_s=READY_TIMEOUT_S, progress_s=PROGRESS_S)

    return run
