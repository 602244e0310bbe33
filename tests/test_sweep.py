"""Capacity search: unit logic, and end to end against a simulator with a configured knee."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtbench.analysis.sweep import Search, SweepSettings
from rtbench.config.scenario import ConfigError

from conftest import REPO


def drive(capacity: int, settings: SweepSettings, saturate_at: int | None = None) -> Search:
    search = Search(settings)
    while (level := search.next_load()) is not None:
        search.record(level, level <= capacity, saturate_at is not None and level >= saturate_at)
    return search


@pytest.mark.parametrize("capacity", [1, 7, 8, 33, 150])
def test_search_steps_up_then_bisects_to_the_exact_capacity(capacity: int) -> None:
    search = drive(capacity, SweepSettings(start=2, factor=2.0, maximum=400))
    assert search.best == capacity  # a failing start bisects down towards 1
    phases = [s.phase for s in search.steps]
    assert phases == sorted(phases, key=lambda p: p != "step")  # steps first, then bisection
    assert len(search.steps) <= 20


def test_search_stops_on_generator_saturation_and_at_max() -> None:
    search = drive(1000, SweepSettings(start=4, maximum=400), saturate_at=32)
    assert search.best == 32 and search.stopped and "saturated" in search.stopped
    capped = drive(1000, SweepSettings(start=4, maximum=50))
    assert capped.best == 50 and "reached --max" in (capped.stopped or "")
    with pytest.raises(ConfigError):
        SweepSettings(factor=1.0)


@pytest.mark.integration
@pytest.mark.slow  # seven runs of rtbench, one per load level
def test_sweep_finds_the_simulators_configured_knee(tmp_path: Path, short_audio: Path) -> None:
    # first audio 100 ms, +100 ms per concurrent session above 6: p95 < 350 holds up to 8
    # (short utterances and a short first audio: each level is one brief turn per session;
    # below 8 sessions TTFA is the 200 ms VAD window, as first audio never precedes it)
    proc = subprocess.run(
        [sys.executable, "-m", "rtbench", "sweep", "--budget", "ttfa.p95 < 350ms",
         "--scenario", str(short_audio / "short.toml"),
         "--start", "2", "--max", "32", "--turns", "1", "--results", str(tmp_path),
         "--run-id", "sw", "--progress", "off",
         "--saturation-threshold-ms", "100",  # this test is about the knee; the stop is unit-tested
         "--sim-first-audio-ms", "100", "--sim-first-audio-p99-ms", "100",
         "--sim-knee-sessions", "6", "--sim-per-session-over-knee-ms", "100",
         "--sim-response-audio-ms", "200"],
        cwd=REPO, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert abs(result["best"] - 8) <= 1, result  # within one step of the knee
    assert "largest load keeping the budgets" in proc.stdout
    assert (tmp_path / "sw" / "sweep.csv").exists()
    levels = [s["level"] for s in result["steps"]]
    assert levels[:4] == [2, 4, 8, 16]
