"""``rtbench run``: load and check everything, start the embedded simulator if no target was
given, drive the sessions, then write and print the results.

All validation (scenario, audio, results directory) happens before the first session starts.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import trio

from .config import Scenario, Target
from .engine import RunPlan, run_sessions
from .progress import RunProgress
from .results import SUMMARY_CSV, RunStore
from .summary import format_table, summarize
from .workload import load_utterance, plan_chunks

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_NOTHING_MEASURED = 3
EXIT_GATE_FAILED = 4

#: Started beside the sessions with the store and live counters (see ``engine.Monitor``).
Watcher = Callable[[RunStore, RunProgress, trio.CancelScope], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_dir: Path
    summary: pd.DataFrame
    turns: pd.DataFrame
    errors: pd.DataFrame
    exit_code: int


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("rtbench", "trio", "trio-websocket", "numpy", "pandas", "hdrhistogram", "orjson"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _scenario_manifest(sc: Scenario) -> dict[str, Any]:
    d = asdict(sc)
    d["audio_dir"] = str(sc.audio_dir)
    d["source"] = None if sc.source is None else str(sc.source)
    return d


def _target_manifest(t: Target, sessions: int) -> dict[str, Any]:
    # Header values may hold secrets: only their names are recorded.
    return {"name": t.name, "url": t.url.split("?")[0], "dialect": str(t.dialect),
            "region": t.region, "model": t.model, "provider": t.provider,
            "header_names": [k for k, _ in t.headers], "sessions": sessions}


@contextmanager
def embedded_simulator(extra_args: list[str]) -> Iterator[str]:
    """Run ``rtbench serve`` in a child process (its own core) and yield its base ws:// URL."""
    cmd = [sys.executable, "-m", "rtbench", "serve", "--port", "0", *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"embedded simulator did not start: {line or 'no output'}")
        yield "ws://" + line.removeprefix("listening on ")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def execute(plan: RunPlan, results_root: Path, run_id: str | None = None,
            extra_manifest: dict[str, Any] | None = None,
            watchers: Sequence[Watcher] = ()) -> RunOutcome:
    """Validate the workload, run every session, write the run directory."""
    sc = plan.scenario
    utterances = [load_utterance(sc.audio_dir / f"{name}.wav") if not name.endswith(".wav")
                  else load_utterance(sc.audio_dir / name) for name in sc.utterances]
    plans = [plan_chunks(u, sc.chunk_ms) for u in utterances]
    per_target = plan.sessions_per_target()
    manifest = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "command": sys.argv[1:],
        "sessions": plan.sessions,
        "load_model": {"kind": "closed", "sessions": plan.sessions,
                       "turns_per_session": sc.turns_per_session},
        "scenario": _scenario_manifest(sc),
        "targets": [_target_manifest(t, per_target[t.name]) for t in plan.targets],
        "audio": {u.name: {"sha256": u.sha256, "duration_ms": u.duration_ms,
                           "speech_end_ms": u.speech_end_ms} for u in utterances},
        "versions": _versions(),
        **(extra_manifest or {}),
    }
    store = RunStore(results_root, run_id or new_run_id(), manifest)
    status = "complete"
    progress = RunProgress()
    monitors = [functools.partial(w, store, progress) for w in watchers]
    try:
        trio.run(run_sessions, plan, plans, store, progress, monitors)
        status = "aborted" if store.manifest.get("aborted") else status
    except KeyboardInterrupt:
        status = "partial"
    finally:
        turns, errors = store.finalize(status, finished_at=dt.datetime.now(dt.UTC).isoformat())
    summary = summarize(turns, errors, store.recorder, manifest["targets"], sc.turns_per_session)
    summary.to_csv(store.dir / SUMMARY_CSV, index=False)
    measured = int((turns["status"] == "ok").sum()) if len(turns) else 0
    return RunOutcome(store.dir, summary, turns, errors,
                      EXIT_OK if measured else EXIT_NOTHING_MEASURED)


def print_outcome(outcome: RunOutcome) -> None:
    print(format_table(outcome.summary))
    if len(outcome.errors):
        labels = outcome.errors["phase"] + "/" + outcome.errors["code"].fillna("-").astype(str)
        print("errors: " + ", ".join(f"{k}: {n}" for k, n in labels.value_counts().items()))
    print(f"results: {outcome.run_dir}")
