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
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import trio

from ..client.engine import Monitor, RunPlan, run_sessions
from ..client.transport import tls_versions
from ..client.workload import ChunkPlan, load_utterances, plan_chunks
from ..config.proxies import display_proxy
from ..config.scenario import Scenario, Target
from ..config.secrets import Redactor
from ..live.progress import ProgressSink, RunProgress
from ..live.watcher import Watcher
from ..metrics import saturation
from ..process.exitcodes import EXIT_NOTHING_MEASURED, EXIT_OK
from ..process.gcpolicy import freeze_baseline
from ..process.loopstalls import LoopStalls
from ..results.diagnosis import unanimous_failures
from ..results.intervallog import write_whole_run
from ..results.store import SUMMARY_CSV, ResultsWriteError, RunStore, load_manifest, load_sessions
from ..results.summary import format_table, summarize

#: Runs the sessions into the store instead of this process's trio loop (``--workers``, ``--ray``:
#: see rtbench.scale); appends to ``stopped_by`` what made the run partial.
Runner = Callable[[RunPlan, list[ChunkPlan], RunStore, list[str]], None]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_dir: Path
    summary: pd.DataFrame
    turns: pd.DataFrame
    errors: pd.DataFrame
    generator: dict[str, Any]
    exit_code: int


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("rtbench", "trio", "wsproto", "numpy", "pandas", "hdrhistogram", "orjson"):
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


def _target_manifest(t: Target, sessions: int, sc: Scenario) -> dict[str, Any]:
    # Header values may hold secrets: only their names are recorded. ``effort``: the reasoning
    # effort its sessions asked for (None: not set), a summary and compare dimension.
    out = {"name": t.name, "url": t.url.split("?")[0], "dialect": str(t.dialect),
           "region": t.region, "model": t.model, "provider": t.provider,
           "effort": sc.session_for(t).reasoning_effort,
           "header_names": [k for k, _ in t.headers], "sessions": sessions,
           "auth": t.auth.describe() if t.auth else None, "proxy": display_proxy(t.proxy)}
    if t.url.startswith("wss://"):
        out.update(tls=None, ca_file=t.ca_file)  # tls: filled in once sessions have run
    return out


def _note_tls(targets: list[dict[str, Any]]) -> None:
    """The TLS version (``TLSv1.3``) each wss:// target's first session negotiated.

    Known only for sessions run in this process (not for ``--workers`` / ``--ray`` shards).
    """
    versions = tls_versions()
    for t in targets:
        if "tls" in t:
            t["tls"] = versions.get(t["name"])


def _die_with_parent() -> None:
    """In the child: get SIGTERM if rtbench itself dies (even by ``kill -9``), no orphan."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextmanager
def embedded_simulator(extra_args: list[str], ca_out: str | None = None) -> Iterator[str]:
    """Run ``rtbench serve`` in a child process (its own core) and yield its base ws:// URL.

    With ``ca_out`` it serves wss:// with a self-signed certificate whose CA it writes there
    (before its first line: the file is ready when this yields).
    """
    tls = ["--tls", "self-signed", "--tls-ca-out", ca_out] if ca_out is not None else []
    cmd = [sys.executable, "-m", "rtbench", "serve", "--port", "0", *tls, *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=_die_with_parent)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"embedded simulator did not start: {line or 'no output'}")
        yield ("wss://" if tls else "ws://") + line.removeprefix("listening on ")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def execute(plan: RunPlan, results_root: Path, run_id: str | None = None,
            extra_manifest: dict[str, Any] | None = None,
            saturation_threshold_ms: float = saturation.DEFAULT_THRESHOLD_MS,
            watchers: Sequence[Watcher] = (),
            runner: Runner | None = None) -> RunOutcome:
    """Validate the workload, run every session, write the run directory."""
    sc = plan.scenario
    utterances = load_utterances(sc)
    plans = [plan_chunks(u, sc.chunk_ms) for u in utterances]
    per_target = plan.sessions_per_target()
    redactor = Redactor(plan.targets)
    manifest = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "command": redactor.argv(sys.argv[1:]),
        "sessions": plan.sessions,
        "load_model": plan.model.describe(),
        "scenario": _scenario_manifest(sc),
        "targets": [_target_manifest(t, per_target[t.name], sc) for t in plan.targets],
        "audio": {u.name: {"sha256": u.sha256, "duration_ms": u.duration_ms,
                           "speech_end_ms": u.speech_end_ms} for u in utterances},
        "versions": _versions(),
        **(extra_manifest or {}),
    }
    store = RunStore(results_root, run_id or new_run_id(), manifest, redactor)
    stopped_by: list[str] = []
    progress = RunProgress()
    monitors = [functools.partial(w, store, progress) for w in watchers]
    stalls = LoopStalls()
    try:
        if runner is None:
            freeze_baseline()
            trio.run(_run_until_signal, plan, plans, store, stopped_by, progress, monitors,
                     instruments=[stalls])
        else:  # shards in other processes; live watchers need this process's loop: not run
            started, t0 = time.time(), time.monotonic()
            runner(plan, plans, store, stopped_by)
            write_whole_run(store.dir, store.recorder, started, time.monotonic() - t0)
    finally:
        # Also on an unexpected crash: everything journaled so far is written out.
        _note_tls(manifest["targets"])
        status = "partial" if stopped_by else (
            "aborted" if store.manifest.get("aborted") else "complete")
        # the loop's stalls go into the manifest with the rest (a crashed loop's too)
        own_loop = {"loop_stalls": stalls.as_dict()} if runner is None else {}
        turns, errors = store.finalize(status,
                                       finished_at=dt.datetime.now(dt.UTC).isoformat(),
                                       stopped_by=stopped_by[0] if stopped_by else None,
                                       **own_loop)
    summary = summarize(turns, errors, store.recorder, manifest["targets"], sc.turns_per_session,
                        load_sessions(store.dir))
    generator = saturation.assess(store.recorder, [t.name for t in plan.targets],
                                  saturation_threshold_ms)
    try:
        summary.to_csv(store.dir / SUMMARY_CSV, index=False)
        store.update_manifest(generator=generator)
    except OSError as exc:
        raise ResultsWriteError(f"cannot write the summary of {store.dir}: {exc.strerror or exc}; "
                           f"`rtbench report {store.dir}` rebuilds it once there is space") from None
    measured = int((turns["status"] == "ok").sum()) if len(turns) else 0
    return RunOutcome(store.dir, summary, turns, errors, generator,
                      EXIT_OK if measured else EXIT_NOTHING_MEASURED)


async def _run_until_signal(plan: RunPlan, plans: list[ChunkPlan], store: RunStore,
                            stopped_by: list[str], progress: RunProgress,
                            monitors: Sequence[Monitor]) -> None:
    """Run the sessions; SIGINT/SIGTERM cancel them at once (the run is then ``partial``)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    stopped_by.append(signal.Signals(signum).name)
                    print(f"rtbench: {stopped_by[0]} received, stopping and writing results",
                          file=sys.stderr, flush=True)
                    nursery.cancel_scope.cancel()
                    return

            def stop_on_write_failure(line: str) -> None:
                stopped_by.append("write_failure")
                print(f"rtbench: {line}; stopping (every row written so far is kept)",
                      file=sys.stderr, flush=True)
                nursery.cancel_scope.cancel()

            store.on_write_failure = stop_on_write_failure
            nursery.start_soon(watch)
            await run_sessions(plan, plans, ProgressSink(store, progress), progress, monitors)
            nursery.cancel_scope.cancel()


def print_outcome(outcome: RunOutcome) -> None:
    print(format_table(outcome.summary))
    if len(outcome.errors):
        labels = outcome.errors["phase"] + "/" + outcome.errors["code"].fillna("-").astype(str)
        print("errors: " + ", ".join(f"{k}: {n}" for k, n in labels.value_counts().items()))
    warning = saturation.describe(outcome.generator)
    if warning:
        print(warning)
    print(f"results: {outcome.run_dir}")
    for line in unanimous_failures(outcome.turns, outcome.errors,
                                   load_manifest(outcome.run_dir)["targets"]):
        print(line, file=sys.stderr)
