"""Scale-out: shard split rule, exact merges, local worker processes (shape, crash, SIGTERM)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from itertools import chain
from pathlib import Path

import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from rtbench.client.engine import RunPlan
from rtbench.client.loadmodel import LoadModel, closed_start_offsets, open_arrival_offsets
from rtbench.client.shard import Shard, shards
from rtbench.config.scenario import Scenario, Target
from rtbench.metrics.recorder import Recorder

from conftest import REPO, rtbench_in_process

QUICK_SIM = ("--sim-first-audio-ms", "250", "--sim-first-audio-p99-ms", "250",
             "--sim-response-audio-ms", "200", "--no-report")


def quick_scenario(tmp_path: Path, audio_dir: Path, turns: int = 2) -> Path:
    """Short turns (short utterances, little trailing silence) so worker runs stay brief."""
    path = tmp_path / "quick.toml"
    path.write_text(f"""
[scenario]
audio_dir = "{audio_dir}"
utterances = ["en_timer", "en_weather"]
turns_per_session = {turns}
chunk_ms = 20
trailing_silence_ms = 250
think_time_ms = 0

[session.turn_detection]
type = "server_vad"
silence_duration_ms = 200
""")
    return path


def rtbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtbench", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120)


def hist_counts(run: Path) -> dict[str, int]:
    """Total count of every histogram of a run (or a worker) directory."""
    out = {}
    for key, entry in json.loads((run / "histograms.json").read_text()).items():
        if key != "counters":
            out[key] = HdrHistogram.decode(entry["hdr"]).get_total_count()
    return out


# -- the split rule (pure) -------------------------------------------------------------------


@pytest.mark.parametrize("sessions,count", [(7, 3), (4, 4), (10, 1), (5, 2)])
def test_closed_slots_split_evenly_and_keep_their_targets(scenario: Scenario, sessions: int,
                                                          count: int) -> None:
    targets = [Target(name=f"t{i}", url=f"ws://127.0.0.1:1/{i}") for i in range(3)]
    one = RunPlan(scenario, targets, sessions, interleave="random", seed=5)
    owned = [[s for s in range(sessions) if sh.owns(s)] for sh in shards(count)]
    assert sorted(chain.from_iterable(owned)) == list(range(sessions))          # every slot exactly once
    assert max(map(len, owned)) - min(map(len, owned)) <= 1          # as even as possible
    assert [len(o) for o in owned] == [sh.share(sessions) for sh in shards(count)]
    for sh, slots in zip(shards(count), owned, strict=True):
        part = RunPlan(scenario, targets, sessions, interleave="random", seed=5, shard=sh)
        # same target per slot as one process: per-target concurrency is unchanged
        assert [part.target_of(s).name for s in slots] == [one.target_of(s).name for s in slots]
    # session indices never collide, whatever each shard's number of sessions
    ids = [sh.session_idx(k) for sh in shards(count) for k in range(50)]
    assert len(set(ids)) == len(ids) and all(i % count == sh.index
                                             for sh in shards(count)
                                             for i in (sh.session_idx(k) for k in range(5)))


def test_open_arrivals_go_round_robin_and_the_schedule_is_unchanged() -> None:
    model = LoadModel(kind="open", sessions=4, rate_per_s=50, arrival="poisson", seed=9,
                      total_sessions=40)
    everything = list(open_arrival_offsets(model))
    parts = [[t for k, t in enumerate(everything) if sh.owns(k)] for sh in shards(3)]
    assert sorted(chain.from_iterable(parts)) == sorted(everything)
    assert [len(p) for p in parts] == [14, 13, 13]
    assert closed_start_offsets(LoadModel(sessions=4, ramp_up_s=2)) == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ValueError):
        Shard(3, 3)


# -- exact histogram merge ---------------------------------------------------------------------


def test_two_recorders_merged_equal_one_recorder_fed_everything() -> None:
    rng = random.Random(4)
    values = [rng.lognormvariate(6, 1.2) for _ in range(5000)] + [1e12]  # one out of range
    one, a, b = Recorder(), Recorder(), Recorder()
    for i, v in enumerate(values):
        one.record_ms("t", "ttfa_ms", v)
        (a if i % 2 else b).record_ms("t", "ttfa_ms", v)
        one.count("bunched_chunks")
        (a if i % 3 else b).count("bunched_chunks")
    b.record_ms("u", "vad_ms", 12.5)
    one.record_ms("u", "vad_ms", 12.5)
    merged = Recorder()
    merged.merge_encoded(json.loads(json.dumps(a.encoded())))   # through JSON, as on disk
    merged.merge_encoded(json.loads(json.dumps(b.encoded())))
    assert merged.counters == one.counters == {"bunched_chunks": len(values)}
    for key, series in one.items():
        got = merged.series(*key)
        assert got.out_of_range == series.out_of_range
        assert got.histogram.get_total_count() == series.histogram.get_total_count()
        assert list(got.histogram.counts) == list(series.histogram.counts)   # bucket by bucket
        assert got.histogram.get_max_value() == series.histogram.get_max_value()
    assert merged.series("t", "ttfa_ms").out_of_range == 1


# -- local worker processes, end to end ----------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow  # two runs, one with two worker processes
def test_two_workers_give_the_single_process_shape_and_exact_counts(
        tmp_path: Path, short_audio: Path) -> None:
    sc = quick_scenario(tmp_path, short_audio, turns=1)
    runs = {}
    for workers in ("1", "2"):
        proc = rtbench("--sessions", "4", "--scenario", str(sc), "--results", str(tmp_path),
                       "--run-id", f"w{workers}", "--workers", workers, *QUICK_SIM)
        assert proc.returncode == 0, proc.stderr
        runs[workers] = tmp_path / f"w{workers}"
    one, two = runs["1"], runs["2"]
    top_level = {p.name for p in one.iterdir()}
    assert top_level | {"workers"} == {p.name for p in two.iterdir()}
    for table in ("turns", "errors", "sessions"):
        a = pd.read_parquet(one / f"{table}.parquet")
        b = pd.read_parquet(two / f"{table}.parquet")
        assert list(a.columns) == list(b.columns), table
        assert len(a) == len(b), table
    s1, s2 = pd.read_csv(one / "summary.csv"), pd.read_csv(two / "summary.csv")
    assert list(s1.columns) == list(s2.columns)
    assert s2.loc[0, "sessions"] == 4 and s2.loc[0, "turns_ok"] == 4
    sessions = pd.read_parquet(two / "sessions.parquet")
    assert sorted(sessions["session_idx"]) == [0, 1, 2, 3]            # unique across workers
    assert sorted(sessions["slot"]) == [0, 1, 2, 3]
    assert all(sessions["session_idx"] % 2 == sessions["slot"] % 2)  # worker = idx % workers
    # the merged histograms hold exactly the workers' values
    merged = hist_counts(two)
    parts = [hist_counts(two / "workers" / w) for w in ("w0", "w1")]
    for key, total in merged.items():
        assert total == sum(p.get(key, 0) for p in parts), key
    assert merged["local/sim-realtime|ttfa_ms"] == 4 == s2.loc[0, "ttfa_ms_count"]
    assert hist_counts(one)["local/sim-realtime|ttfa_ms"] == 4
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    info = manifest["workers"]
    assert info["kind"] == "processes" and info["count"] == 2 and info["failed"] == []
    assert [s["turns"] for s in info["shards"]] == [2, 2]
    # started together: each worker's skew on its own clock is small (loaded 2-core machine)
    assert all(0 <= s["start_skew_ms"] < 250 for s in info["shards"]), info["shards"]


def _wait_for_lines(path: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


@pytest.mark.integration
@pytest.mark.slow
def test_a_crashed_worker_is_reported_and_the_others_are_kept(tmp_path: Path,
                                                              short_audio: Path) -> None:
    sc = quick_scenario(tmp_path, short_audio, turns=3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtbench", "--sessions", "4", "--workers", "2", "--scenario",
         str(sc), "--results", str(tmp_path), "--run-id", "crash", *QUICK_SIM],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = tmp_path / "crash"
    try:
        _wait_for_lines(run / "workers" / "w1" / "turns.jsonl", 1)
        pid = json.loads((run / "workers" / "w1" / "manifest.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 5, err              # measured, but a shard failed: incomplete
    assert "worker 1 failed (killed by SIGKILL)" in err and "not merged" in err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["stopped_by"] == "shard_failure"
    assert manifest["workers"]["failed"] == [1]
    assert [s["status"] for s in manifest["workers"]["shards"]] == ["complete", "failed"]
    turns = pd.read_parquet(run / "turns.parquet")
    assert len(turns) == 6 and (turns["session_idx"] % 2 == 0).all()   # all of worker 0's
    assert hist_counts(run)["local/sim-realtime|ttfa_ms"] == 6
    assert len((run / "workers" / "w1" / "turns.jsonl").read_bytes().splitlines()) >= 1
    assert pd.read_csv(run / "summary.csv").loc[0, "turns_ok"] == 6


@pytest.mark.integration
@pytest.mark.slow
def test_sigterm_stops_every_worker_and_writes_a_partial_merged_run(tmp_path: Path,
                                                                    short_audio: Path) -> None:
    sc = quick_scenario(tmp_path, short_audio, turns=50)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtbench", "--sessions", "4", "--workers", "2", "--scenario",
         str(sc), "--results", str(tmp_path), "--run-id", "sig", *QUICK_SIM],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = tmp_path / "sig"
    try:
        for w in ("w0", "w1"):
            _wait_for_lines(run / "workers" / w / "turns.jsonl", 2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - t0
    finally:
        proc.kill()
    assert stopped_in < 2.0, (stopped_in, err)
    assert "SIGTERM received" in err and proc.returncode == 5
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["stopped_by"] == "SIGTERM"
    assert [s["stopped_by"] for s in manifest["workers"]["shards"]] == ["SIGTERM", "SIGTERM"]
    journaled = sum(len((run / "workers" / w / "turns.jsonl").read_bytes().splitlines())
                    for w in ("w0", "w1"))
    turns = pd.read_parquet(run / "turns.parquet")
    assert len(turns) == journaled >= 4
    assert turns["session_idx"].isin([0, 1, 2, 3]).all()
    assert (run / "summary.csv").exists()


def test_workers_flag_is_checked_before_anything_starts(tmp_path: Path) -> None:
    proc = rtbench_in_process("--sessions", "2", "--workers", "3", "--results", str(tmp_path))
    assert proc.returncode == 2 and "--workers must be between 1 and" in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.integration
@pytest.mark.slow
def test_open_model_workers_keep_the_whole_arrival_schedule(tmp_path: Path,
                                                            short_audio: Path) -> None:
    sc = quick_scenario(tmp_path, short_audio, turns=1)
    proc = rtbench("--load", "open", "--rate", "10", "--total-sessions", "6", "--sessions", "6",
                   "--workers", "2", "--scenario", str(sc), "--results", str(tmp_path),
                   "--run-id", "open", *QUICK_SIM)
    assert proc.returncode == 0, proc.stderr
    sessions = pd.read_parquet(tmp_path / "open" / "sessions.parquet")
    assert sorted(sessions["intended_start_s"]) == pytest.approx([k / 10 for k in range(6)],
                                                                 abs=1e-9)
    assert (sessions["slot"] % 2 == sessions["session_idx"] % 2).all()   # arrival k -> worker k % 2
    assert sorted(sessions["session_idx"]) == list(range(6)) and (sessions["status"] == "ok").all()
    assert (sessions["start_lag_ms"] < 100).all()   # each shard's clock starts at the common start


def test_merge_keeps_complete_rows_and_skips_failed_shards(tmp_path: Path) -> None:
    from rtbench.metrics.records import TurnRecord
    from rtbench.results.store import RunStore, load_tables
    from rtbench.scale.merge import JOURNALS, ShardResult, merge_into
    from rtbench.scale.shardrun import ShardReport

    def turn(idx: int) -> bytes:
        rec = TurnRecord(target="t", region="r", model="m", session_idx=idx, session_id=None,
                         turn_idx=0, utterance="u", status="ok", ttfa_ms=10.0)
        return json.dumps(rec.as_dict()).encode() + b"\n"

    rec = Recorder()
    rec.record_ms("t", "ttfa_ms", 10.0)
    rec.record_ms("t", "ttfa_ms", 10.0)
    ok = ShardResult(ShardReport(0, "complete"), dict.fromkeys(JOURNALS, b""), rec.encoded())
    ok.journals["turns.jsonl"] = turn(0) + turn(2) + b'{"target": "t", "regi'  # cut by a crash
    dead = ShardResult(ShardReport(1, "failed", message="killed by SIGKILL"),
                       dict.fromkeys(JOURNALS, b""), None)
    dead.journals["turns.jsonl"] = turn(1)
    store = RunStore(tmp_path, "run", {})
    merge_into(store, [dead, ok])
    turns, _ = store.finalize("partial")
    assert list(turns["session_idx"]) == [0, 2]
    assert len(load_tables(store.dir)[0]) == 2
    assert store.recorder.series("t", "ttfa_ms").histogram.get_total_count() == 2
