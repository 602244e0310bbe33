"""Shards as Ray actors (``--ray auto|ray://HOST:PORT|local``), spread over the cluster's nodes.

Each actor runs one shard in a thread of its own process (the same :class:`ShardRun` as a local
worker) in a scratch directory on its node, then *returns* its journals and encoded histograms
through Ray, so the driver and the actors need no shared disk: the driver may be a laptop
talking to a KubeRay cluster through Ray Client. The driver keeps each returned shard under
``<run>/workers/w<i>/`` like a local worker's, and merges exactly as for local workers. Actors
need ``rtbench`` importable on every node (same version as the driver); Ray is optional
(``pip install 'rtbench[ray]'``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..client.engine import RunPlan
from ..client.workload import ChunkPlan
from ..config.scenario import ConfigError
from ..orchestrate.execute import Runner
from ..results.store import SHARDS_DIR, RunStore
from .local import PROGRESS_S
from .merge import JOURNALS, ShardResult
from .shardrun import ShardReport, ShardRun, ShardSpec, shard_dir_name

#: Remote calls to start the actors take a moment on a real cluster (Ray Client, other nodes).
RAY_LEAD_S = 1.0
READY_TIMEOUT_S = 120.0
PROGRESS_TIMEOUT_S = 2.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'rtbench[ray]'") from None
    return ray


class ShardActor:
    """One shard inside a Ray worker process; wrapped with ``ray.remote`` at run time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: ShardRun | None = None
        self._stop: str | None = None

    def ready(self) -> tuple[str, int]:
        return socket.gethostname(), os.getpid()

    def run(self, spec: ShardSpec, start_wall: float) -> ShardResult:
        scratch = Path(tempfile.mkdtemp(prefix="rtbench-shard-"))
        try:
            run = ShardRun(spec, scratch)
            with self._lock:
                self._run = run
                if self._stop is not None:
                    run.stop(self._stop)
            report = run.run(start_wall, signals=False)
            return ShardResult.from_dir(report, run.dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def progress(self) -> tuple[int, int]:
        return self._run.progress() if self._run is not None else (0, 0)

    def stop(self, reason: str) -> None:
        with self._lock:
            self._stop = reason
            if self._run is not None:
                self._run.stop(reason)


class RayPool:
    """A :class:`~rtbench.scale.driver.ShardPool` of Ray actors, placed with ``SPREAD``."""

    noun = "shard"
    kind = "ray"

    def __init__(self, ray: Any, out_root: Path) -> None:
        self.ray = ray
        self.out_root = out_root
        self.actors: list[Any] = []
        self.specs: list[ShardSpec] = []
        self._ready_refs: list[Any] = []
        self._run_refs: list[Any] = []
        self._progress: list[tuple[int, int]] = []

    def launch(self, specs: Sequence[ShardSpec]) -> None:
        actor = self.ray.remote(ShardActor).options(
            num_cpus=1, max_concurrency=4, scheduling_strategy="SPREAD")
        self.specs = list(specs)
        self.actors = [actor.remote() for _ in specs]
        self._ready_refs = [a.ready.remote() for a in self.actors]
        self._progress = [(0, 0)] * len(specs)

    def _all_done(self, refs: list[Any]) -> bool:
        done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        return len(done) == len(refs)

    def ready(self) -> bool:
        return self._all_done(self._ready_refs)

    def start(self, start_wall: float) -> None:
        self._run_refs = [a.run.remote(spec, start_wall)
                          for a, spec in zip(self.actors, self.specs, strict=True)]

    def done(self) -> bool:
        return self._all_done(self._run_refs)

    def progress(self) -> list[tuple[int, int]]:
        try:
            got = self.ray.get([a.progress.remote() for a in self.actors],
                               timeout=PROGRESS_TIMEOUT_S)
            self._progress = [(int(t), int(e)) for t, e in got]
        except Exception:  # a slow or lost actor: show the last figures; results() will tell
            pass
        return self._progress

    def stop(self, reason: str) -> None:
        for a in self.actors:
            a.stop.remote(reason)

    def results(self) -> list[ShardResult]:
        out = []
        for spec, ref in zip(self.specs, self._run_refs, strict=True):
            try:
                result: ShardResult = self.ray.get(ref)
            except Exception as exc:  # actor died, node lost, ...
                message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(
                    exc).__name__
                result = ShardResult(ShardReport(spec.index, "failed", message=message),
                                     {name: b"" for name in JOURNALS}, None)
            result.write_to(self.out_root / shard_dir_name(spec.index))
            out.append(result)
        return out

    def close(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(a)


def connect(address: str) -> tuple[Any, bool]:
    """Ray, connected to ``address`` (``auto``, ``ray://host:port``, ``local`` = start one here);
    an already initialized Ray is used as it is. Returns (ray, whether we started it)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    try:
        if address == "local":
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except ConnectionError as exc:
        raise ConfigError(f"cannot connect to Ray at {address}: {exc}") from None
    return ray, True


def ray_runner(address: str, count: int | None, progress_s: float = PROGRESS_S) -> Runner:
    """A :data:`rtbench.orchestrate.execute.Runner` that drives ``count`` shards as Ray actors
    (default: one per CPU of the cluster, at most one per session)."""
    from .driver import drive

    def run(plan: RunPlan, plans: list[ChunkPlan], store: RunStore, stopped_by: list[str]) -> None:
        ray, started = connect(address)
        try:
            n = count or max(1, int(ray.cluster_resources().get("CPU", 1)))
            n = min(n, plan.model.sessions)
            drive(RayPool(ray, store.dir / SHARDS_DIR), n, plan, plans, store, stopped_by,
                  lead_s=RAY_LEAD_S, ready_timeout_s=READY_TIMEOUT_S, progress_s=progress_s)
        finally:
            if started:
                ray.shutdown()

    return run
