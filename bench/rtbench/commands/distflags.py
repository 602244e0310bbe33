"""Scale-out flags of ``rtbench run``: ``--workers N`` local processes, ``--ray ADDRESS``.

Kept apart from ``commands/run.py`` like the target flags; turns the flags into a typed
:class:`Dist`, and that into a :data:`~rtbench.orchestrate.execute.Runner` (or None: this
process drives every session itself).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..config.scenario import ConfigError
from ..orchestrate.execute import Runner


def add_dist_args(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("scale-out (README: Scaling out)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="split the sessions over N local worker processes (default 1: this "
                        "process); with --ray: N shards (default one per cluster CPU)")
    g.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the shards as Ray actors spread over a cluster: auto (the running "
                        "cluster), ray://HOST:10001 (Ray Client) or local (start Ray here); "
                        "needs pip install 'rtbench[ray]'")


@dataclass(frozen=True, slots=True)
class Dist:
    """How the sessions are spread: over local worker processes, over Ray actors, or not."""

    workers: int | None = None
    ray: str | None = None


def dist_from(ns: argparse.Namespace) -> Dist:
    return Dist(ns.workers, ns.ray)


def dist_runner(dist: Dist, sessions: int) -> Runner | None:
    """The runner asked for; ``sessions`` is the run's concurrency (or cap)."""
    workers = dist.workers
    if workers is not None and not 1 <= workers <= sessions:
        raise ConfigError(f"--workers must be between 1 and the number of sessions ({sessions}), "
                          f"got {workers}")
    if dist.ray is not None:
        from ..scale.rayrun import import_ray, ray_runner

        import_ray()  # fail before anything starts when Ray is not installed
        return ray_runner(dist.ray, workers)
    if workers is None or workers == 1:
        return None
    from ..scale.local import local_runner

    return local_runner(workers)
