"""The command line, end to end, as a user runs it (embedded simulator in a child process).

Rules: child processes (marked ``integration``) on 127.0.0.1 port 0, each bounded by a
timeout, or ``rtbench_in_process`` for command lines that fail before anything starts; plumbing
(exit codes, files, signals), with timing bounds a loaded machine keeps (exact timing is in
test_exact_timing.py). Short utterances (conftest.short_audio) keep each run brief.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, rtbench_in_process


def rtbench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtbench", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


def start_long_run(tmp_path: Path, run_id: str, sessions: int, output: int, short_audio: Path,
                   report: bool = False) -> tuple[subprocess.Popen[str], Path]:
    """A 50-turn run in the background, returned once ``sessions`` turns are journaled."""
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "rtbench", "--sessions", str(sessions), "--turns", "50",
         "--scenario", str(short_audio / "short.toml"),
         "--results", str(tmp_path), "--run-id", run_id, "--progress", "off",
         "--sim-first-audio-ms", "600", "--sim-first-audio-p99-ms", "600",
         "--sim-response-audio-ms", "200", *([] if report else ["--no-report"])],
        cwd=REPO, text=True, stdout=output, stderr=output)
    journal = tmp_path / run_id / "turns.jsonl"
    deadline = time.monotonic() + 60
    while not (journal.exists() and len(journal.read_text().splitlines()) >= sessions):
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no turns journaled")
        time.sleep(0.1)
    return proc, journal


@pytest.mark.integration
@pytest.mark.slow
def test_rtbench_sessions_5_runs_against_the_embedded_simulator(tmp_path: Path,
                                                                short_audio: Path) -> None:
    proc = rtbench("--sessions", "5", "--turns", "1", "--scenario", str(short_audio / "short.toml"),
                   "--results", str(tmp_path),
                   "--run-id", "cli", "--sim-first-audio-ms", "700",
                   "--sim-first-audio-p99-ms", "700")
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "cli"
    for name in ("manifest.json", "turns.parquet", "errors.parquet", "histograms.json",
                 "summary.csv", "turns.jsonl"):
        assert (run / name).exists(), name
    summary = pd.read_csv(run / "summary.csv")
    assert summary.loc[0, "sessions"] == 5 and summary.loc[0, "turns_ok"] == 5
    # real sockets: the injected 700 ms at least (HDR keeps 3 digits), plus what load adds;
    # the measurement itself is exact on the mock clock (test_exact_timing.py)
    assert 699 <= summary.loc[0, "ttfa_ms_p50"] < 1700
    turns = pd.read_parquet(run / "turns.parquet")
    assert len(turns) == 5 and set(turns["region"]) == {"local"}
    assert "TTFA p50/95" in proc.stdout and str(run) in proc.stdout
    stalls = json.loads((run / "manifest.json").read_text())["loop_stalls"]
    assert stalls["steps"] > 100 and stalls["worst_ms"] >= 0.0   # the run's own loop, timed


@pytest.mark.integration
def test_bad_scenario_gives_one_line_error_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nutterances = ["x"]\nchunk_ms = 15\n')
    proc = rtbench("--scenario", str(bad), "--results", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "chunk_ms must be a positive multiple of 10" in proc.stderr
    # (the exit code of a real process is checked above; the rest of the config errors run
    # in this interpreter, the same main without a process start each)
    proc = rtbench_in_process("--scenario", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "scenario file not found" in proc.stderr


@pytest.mark.integration
def test_sigterm_stops_within_2s_and_keeps_completed_turns(tmp_path: Path,
                                                           short_audio: Path) -> None:
    import json
    import signal
    import time

    proc, journal = start_long_run(tmp_path, "sig", 4, subprocess.PIPE, short_audio, report=True)
    manifest_path = tmp_path / "sig" / "manifest.json"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    # Stopped = the results are written (the report of the stopped run follows them).
    while json.loads(manifest_path.read_text()).get("status") == "running":
        assert time.monotonic() - t0 < 30, "the run did not stop"
        time.sleep(0.02)
    stopped_in = time.monotonic() - t0
    out, err = proc.communicate(timeout=60)
    assert stopped_in < 2.0, (stopped_in, err)
    assert "SIGTERM received" in err
    assert proc.returncode == 5 and "run status: partial (SIGTERM)" in out
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "partial" and manifest["stopped_by"] == "SIGTERM"
    assert "stopped by SIGTERM" in (tmp_path / "sig" / "report.html").read_text()
    journaled = len(journal.read_text().splitlines())
    turns = pd.read_parquet(tmp_path / "sig" / "turns.parquet")
    assert len(turns) == journaled >= 4
    # Honest accounting: the sessions cut short have their rows, their unplayed turns are
    # "not run", and a run with no error shows no error rate.
    sessions = pd.read_parquet(tmp_path / "sig" / "sessions.parquet")
    assert len(sessions) == 4 and set(sessions["status"]) == {"stopped"}
    summary = pd.read_csv(tmp_path / "sig" / "summary.csv")
    assert (turns["status"] == "ok").all() and summary.loc[0, "error_rate"] == 0.0
    assert summary.loc[0, "turns_not_run"] == 4 * 50 - len(turns)


@pytest.mark.integration
@pytest.mark.slow
def test_kill_9_then_report_recovers_every_journaled_turn(tmp_path: Path,
                                                          short_audio: Path) -> None:
    import json
    import signal
    import time

    proc, journal = start_long_run(tmp_path, "k9", 3, subprocess.DEVNULL, short_audio)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    gone_by = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < gone_by:
        time.sleep(0.1)
    for pid in children:  # the embedded simulator does not outlive rtbench
        assert not Path(f"/proc/{pid}").exists(), f"simulator {pid} orphaned"
    journaled = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(journaled) >= 3
    assert not (tmp_path / "k9" / "turns.parquet").exists()
    out = rtbench("report", str(tmp_path / "k9"))
    assert out.returncode == 0, out.stderr
    assert "recovered an unfinished run" in out.stdout
    turns = pd.read_parquet(tmp_path / "k9" / "turns.parquet")
    assert len(turns) == len(journaled)
    manifest = json.loads((tmp_path / "k9" / "manifest.json").read_text())
    assert manifest["status"] == "recovered"
    summary = pd.read_csv(tmp_path / "k9" / "summary.csv")
    assert summary.loc[0, "ttfa_ms_count"] == (turns["status"] == "ok").sum()
    assert (tmp_path / "k9" / "report.html").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_serve_injects_from_flags_and_writes_its_stats_file(tmp_path: Path,
                                                           short_audio: Path) -> None:
    stats = tmp_path / "stats.json"
    serve = subprocess.Popen(
        [sys.executable, "-m", "rtbench", "serve", "--port", "0", "--stats-file", str(stats),
         "--fault", "handshake_403=every:2", "--first-audio-ms", "300"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline().strip()
        assert line.startswith("listening on 127.0.0.1:"), line
        url = "ws://" + line.removeprefix("listening on ") + "/v1/realtime?model=gpt-realtime"
        proc = rtbench("--url", url, "--sessions", "4", "--turns", "1", "--results",
                       str(tmp_path), "--run-id", "r", "--scenario", str(short_audio / "short.toml"),
                       "--no-report")
        assert proc.returncode == 0, proc.stderr
    finally:
        serve.terminate()
        serve.wait(timeout=10)
    counts = json.loads(stats.read_text())
    assert counts["injected"] == {"handshake_403": 2} and counts["sessions"] == 2
    assert counts["fault_plan"] == [{"kind": "handshake_403", "every": 2}]
    assert counts["send_lateness_ms"]["count"] > 0
    errors = pd.read_parquet(tmp_path / "r" / "errors.parquet")
    assert list(errors["code"]) == ["model_not_found"] * 2


@pytest.mark.integration
@pytest.mark.slow
def test_run_forwards_a_fault_plan_with_a_profile_to_the_embedded_simulator(
        tmp_path: Path, short_audio: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[fault]]\nkind = "response_failed_insufficient_quota"\nsessions = [2]\n'
                    '[profile]\nfirst_audio_ms = 800\nresponse_audio_ms = 300\n')
    stats = tmp_path / "stats.json"
    proc = rtbench("--sessions", "3", "--turns", "1", "--results", str(tmp_path), "--run-id", "r",
                   "--sim-faults", str(plan), "--sim-stats-file", str(stats),
                   "--scenario", str(short_audio / "short.toml"), "--no-report")
    assert proc.returncode == 0, proc.stderr
    turns = pd.read_parquet(tmp_path / "r" / "turns.parquet")
    ok = turns[turns["status"] == "ok"]
    # The plan's profile reached the simulator: 300 ms of response audio (the default is
    # 1500), exactly; and TTFA at least its 800 ms (above the 200 ms VAD window)
    assert len(ok) == 2 and (ok["output_audio_ms"] == 300).all(), ok["output_audio_ms"]
    assert ok["ttfa_ms"].between(800 - 1e-3, 1800).all(), ok["ttfa_ms"]
    errors = pd.read_parquet(tmp_path / "r" / "errors.parquet")
    assert list(errors["code"]) == ["insufficient_quota"]
    assert json.loads(stats.read_text())["injected"] == {"response_failed_insufficient_quota": 1}


def test_bad_fault_plan_is_a_one_line_config_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[fault]]\nkind = "meltdown"\nevery = 1\n')
    proc = rtbench_in_process("--sim-faults", str(plan), "--results", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "unknown fault kind 'meltdown'" in proc.stderr


def test_unwritable_results_dir_is_one_line_before_any_session(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = rtbench_in_process("--sessions", "1", "--results", str(blocker / "results"),
                              "--progress", "off")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot write results" in proc.stderr
    assert proc.stdout == ""  # nothing ran, nothing printed
