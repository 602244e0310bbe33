"""A results disk that fills up mid-run: the run stops cleanly, keeps every whole journal line,
names the file it could not write, and leaves a directory ``rtbench report`` can rebuild.

The disk is made "full" for the rtbench process alone with RLIMIT_FSIZE (no mount needed):
each write past the limit fails with EFBIG, as a full filesystem fails with ENOSPC."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from conftest import REPO

LIMIT = 7_000    # bytes per file: turns.jsonl passes it after a few turns


def _small_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_a_full_disk_stops_the_run_and_keeps_whole_lines(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rtbench", "--sessions", "6", "--turns", "40", "--results",
         str(tmp_path), "--run-id", "full", "--progress", "off", "--no-report",
         "--sim-first-audio-ms", "20", "--sim-first-audio-p99-ms", "20",
         "--sim-response-audio-ms", "100"],
        cwd=REPO, text=True, capture_output=True, timeout=180, preexec_fn=_small_files)
    run = tmp_path / "full"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write" in proc.stderr and "turns.jsonl" in proc.stderr, proc.stderr
    lines = (run / "turns.jsonl").read_bytes().splitlines(keepends=True)
    assert lines and all(line.endswith(b"\n") for line in lines)
    rows = [orjson.loads(line) for line in lines]            # every kept line is whole
    manifest = json.loads((run / "manifest.json").read_text())
    if manifest["status"] == "running":                      # the tables did not fit either
        assert proc.returncode == 5 and "rtbench report" in proc.stderr
        subprocess.run([sys.executable, "-m", "rtbench", "report", str(run)], cwd=REPO,
                       check=True, capture_output=True, timeout=120)
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["recovered"]["turns"] == len(rows)
    else:
        assert manifest["status"] == "partial" and manifest["stopped_by"] == "write_failure"
        assert "turns.jsonl" in manifest["write_failure"] and manifest["rows_lost"] >= 1
        assert proc.returncode == 5, proc.stdout + proc.stderr
