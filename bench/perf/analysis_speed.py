"""How long does summarizing a big run take? 1,000,000 turn rows, grouped by region × model.

    python bench/perf/analysis_speed.py [--rows 1000000] [--targets 12] [--repeats 3]

Builds synthetic tables shaped like a real run's (turns, errors, sessions) and a Recorder whose
histograms hold one value per turn and metric, then times ``summary.summarize`` — the call a
run makes at its end — and, for scale, reading turns.parquet back. Generation is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rtbench.metrics.recorder import ALL_METRICS, SESSION_LATENCIES, Recorder
from rtbench.results.summary import summarize


def synthetic(rows: int, n_targets: int, seed: int = 0
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Recorder, list[dict[str, object]]]:
    rng = np.random.default_rng(seed)
    regions = ["eastus2", "swedencentral", "westus3", "japaneast"]
    models = ["gpt-realtime", "gpt-realtime-mini", "gpt-4o-realtime-preview"]
    targets = [{"name": f"t{i}", "region": regions[i % len(regions)],
                "model": models[(i // len(regions)) % len(models)], "sessions": 0}
               for i in range(n_targets)]
    turns_per_session = 2
    t_idx = rng.integers(0, n_targets, rows)
    names = np.array([str(t["name"]) for t in targets])
    turns = pd.DataFrame({
        "target": names[t_idx],
        "region": np.array([str(t["region"]) for t in targets])[t_idx],
        "model": np.array([str(t["model"]) for t in targets])[t_idx],
        "session_idx": np.arange(rows) // turns_per_session,
        "turn_idx": np.arange(rows) % turns_per_session,
        "status": np.where(rng.random(rows) < 0.99, "ok", "error"),
        "turn_mode": "server_vad",
        "ttfa_ms": rng.lognormal(np.log(700), 0.3, rows),
    })
    n_err = rows // 100
    errors = pd.DataFrame({
        "target": names[rng.integers(0, n_targets, n_err)],
        "session_idx": rng.integers(0, rows // turns_per_session, n_err),
        "severity": np.where(rng.random(n_err) < 0.9, "retryable", "benign"),
        "code": "server_error",
    })
    n_sessions = rows // turns_per_session
    s_idx = t_idx[::turns_per_session][:n_sessions]
    sessions = pd.DataFrame({
        "target": names[s_idx],
        "attempt": 0,
        "retried": False,
        "status": np.where(rng.random(n_sessions) < 0.995, "ok", "failed"),
        "turns_ok": 2,
        "turns_failed": 0,
        "start_lag_ms": rng.exponential(2.0, n_sessions),
    })
    for t in targets:
        t["sessions"] = int((sessions["target"] == t["name"]).sum())
    recorder = Recorder()
    for i, t in enumerate(targets):
        n = int((t_idx == i).sum())
        for metric in ALL_METRICS:
            count = n // turns_per_session if metric in SESSION_LATENCIES else n
            values_us = np.round(rng.lognormal(np.log(500_000), 0.4, count)).astype(np.int64)
            uniq, counts = np.unique(values_us // 100 * 100, return_counts=True)  # fast fill
            hist = recorder.series(str(t["name"]), metric).histogram
            for v, c in zip(uniq.tolist(), counts.tolist(), strict=True):
                hist.record_value(v, c)
    return turns, errors, sessions, recorder, targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--targets", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ns = ap.parse_args()
    t0 = time.perf_counter()
    turns, errors, sessions, recorder, targets = synthetic(ns.rows, ns.targets)
    print(f"generated {len(turns):,} turns, {len(errors):,} errors, {len(sessions):,} sessions, "
          f"{len(targets)} targets x {len(ALL_METRICS)} histograms "
          f"in {time.perf_counter() - t0:.1f} s (not timed below)")
    times = []
    for _ in range(ns.repeats):
        t0 = time.perf_counter()
        summary = summarize(turns, errors, recorder, targets, 2, sessions)
        times.append(time.perf_counter() - t0)
    print(f"summarize: {len(summary)} region x model rows from {ns.rows:,} turn rows in "
          f"{statistics.median(times):.2f} s (median of {ns.repeats}: "
          f"{', '.join(f'{t:.2f}' for t in times)})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turns.parquet"
        turns.to_parquet(path, index=False)
        t0 = time.perf_counter()
        pd.read_parquet(path)
        print(f"(for scale: reading turns.parquet back takes {time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
    main()
