"""Abort-on-fail: stop a run as soon as a budget is *certainly* broken.

Counts and rates abort the moment their final value can no longer meet the budget (an error
count already past the limit, an error rate whose lost turns alone exceed it). Percentiles and
means are never certain, so they abort only once the targets they cover have completed
``min_turns`` turns and are over budget: the user chooses how much evidence is enough. The
generator's own loop lag and send lateness never abort early (``analysis.gate`` says why).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from ..analysis.gate import Budget, RunData, evaluate, targets_from_manifest, turns_per_session
from ..results.store import RunStore
from .progress import RunProgress
from .watcher import Watcher

CHECK_EVERY_S = 0.25


def abort_watcher(budgets: Sequence[Budget], min_turns: int,
                  stream: TextIO = sys.stderr, every_s: float = CHECK_EVERY_S) -> Watcher:
    async def watch(store: RunStore, progress: RunProgress, scope: trio.CancelScope) -> None:
        targets = targets_from_manifest(store.manifest)
        tps = turns_per_session(store.manifest)
        t0 = trio.current_time()
        while True:
            await trio.sleep(every_s)
            data = RunData(targets, tps, store.recorder, progress.tally, final=False,
                           min_turns=min_turns)
            broken = [v for v in evaluate(budgets, data) if v.certain]
            if broken:
                t_s = round(trio.current_time() - t0, 3)
                store.manifest["aborted"] = {"t_s": t_s, "turns_done": progress.turns_done,
                                             "budgets": [v.name for v in broken],
                                             "messages": [v.message for v in broken]}
                print(f"rtbench: aborting at {t_s:.1f} s: " + "; ".join(v.message for v in broken),
                      file=stream, flush=True)
                scope.cancel()
                return

    return watch
