"""A short embedded-simulator run shared by the gate, report and progress tests."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import REPO


def rtbench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtbench", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


FAST_SCENARIO = """
[scenario]
audio_dir = "{audio_dir}"
utterances = ["en_timer", "en_weather"]
turns_per_session = 2
trailing_silence_ms = 300
think_time_ms = 50
[session.turn_detection]
type = "server_vad"
silence_duration_ms = 200
[budgets]
checks = ["error_rate < 1%"]
"""


def fast_scenario(tmp: Path, audio_dir: Path) -> Path:
    """Two turns per session on the short utterances (conftest.short_audio)."""
    path = tmp / "fast.toml"
    path.write_text(FAST_SCENARIO.format(audio_dir=audio_dir))
    return path


RunSim = Callable[..., tuple[int, str, Path]]


def _run_sim(audio_dir: Path, tmp: Path, run_id: str, ttfa_ms: int, *flags: str,
             extra: tuple[str, ...] = ()) -> tuple[int, str, Path]:
    proc = rtbench("--sessions", "4", "--scenario", str(fast_scenario(tmp, audio_dir)), "--results",
                   str(tmp / "results"), "--run-id", run_id,
                   "--sim-first-audio-ms", str(ttfa_ms), "--sim-first-audio-p99-ms", str(ttfa_ms),
                   *flags, *extra)
    return proc.returncode, proc.stdout + proc.stderr, tmp / "results" / run_id


@pytest.fixture
def run_sim(short_audio: Path) -> RunSim:
    """``run_sim(tmp, run_id, ttfa_ms, *flags) -> (exit code, output, run dir)``; no report
    (``fast_run`` writes the one test_report renders)."""
    return functools.partial(_run_sim, short_audio, extra=("--no-report",))


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory: pytest.TempPathFactory, short_audio: Path) -> Path:
    """One passing run at a constant 300 ms TTFA, gated by the scenario and the CLI.

    The TTFA budget leaves room for a loaded machine: it checks the plumbing, not precision.
    """
    tmp = tmp_path_factory.mktemp("gate")
    code, out, run = _run_sim(short_audio, tmp, "fast", 300, "--budget", "ttfa.p95 < 900ms",
                             "--budget", "ttfa.max{region=local} < 1s",
                             "--junit", str(tmp / "ci-junit.xml"))
    assert code == 0, out
    assert "PASS ttfa.p95 < 900ms" in out
    # Not a terminal: plain progress lines on stderr, the last one after every session ended.
    assert "progress elapsed: " in out and "turns: 8 done, 8 ok" in out
    return run
