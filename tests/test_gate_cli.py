"""Release gating end to end: budgets on ``run``, offline ``gate``, JUnit, exit codes, baseline."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from rtbench.analysis.baseline import compare
from rtbench.analysis.verdict import RUN_CHECK

from conftest import rtbench_in_process
from test_cli import rtbench

if TYPE_CHECKING:
    from gatehelp import RunSim

pytest_plugins = ["gatehelp"]   # fixtures: fast_run (one shared run), run_sim


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for c in ET.parse(path).getroot().iter("testcase")}


@pytest.mark.slow
def test_passing_budgets_pass_and_write_junit_and_summary(fast_run: Path) -> None:
    cases = junit_cases(fast_run / "junit.xml")
    # The run itself, then the scenario's [budgets], then --budget, one test case each; no
    # failures.
    assert list(cases) == [RUN_CHECK, "error_rate < 1%", "ttfa.p95 < 900ms",
                           "ttfa.max{region=local} < 1s"]
    assert all(c.find("failure") is None for c in cases.values())
    assert (fast_run.parent.parent / "ci-junit.xml").read_text() == (fast_run / "junit.xml").read_text()
    doc = json.loads((fast_run / "summary.json").read_text())
    assert doc["verdict"] == "pass" and doc["exit_code"] == 0 and doc["turns_ok"] == 8
    # over real sockets: at least the injected 300 ms (HDR keeps 3 digits), plus what load adds
    assert 299 <= doc["groups"][0]["ttfa_ms_p50"] < 900


def test_offline_gate_gives_the_runs_verdict_and_catches_a_broken_budget(
        fast_run: Path, tmp_path: Path) -> None:
    same = rtbench("gate", str(fast_run))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "3 of 3 checks passed" in same.stdout
    junit = tmp_path / "junit.xml"
    broken = rtbench("gate", str(fast_run), "--budget", "ttfa.p95 < 250ms",
                     "--budget", "turns_ok >= 8", "--junit", str(junit))
    assert broken.returncode == 4, broken.stdout + broken.stderr
    cases = junit_cases(junit)
    failure = cases["ttfa.p95 < 250ms"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    observed = re.fullmatch(r"observed ([0-9.]+) ms, limit < 250\.0 ms", message)
    assert observed is not None and 299 <= float(observed.group(1)) < 900, message
    assert cases["turns_ok >= 8"].find("failure") is None


def test_bad_budget_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    proc = rtbench_in_process("--sessions", "1", "--results", str(tmp_path), "--budget",
                              "ttfa.p95 < 5%")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("rtbench: error: budget 'ttfa.p95 < 5%': '%' is not a unit "
                                   "for a latency (use ms, s or us)")
    assert not any(tmp_path.iterdir())
    proc = rtbench_in_process("gate", str(tmp_path / "nope"), "--budget", "errors == 0")
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


@pytest.mark.slow
def test_baseline_regression_fails_the_slower_run(fast_run: Path, tmp_path: Path,
                                                  run_sim: RunSim) -> None:
    # Eight turns are too few to compare a p95 (it needs 100 in each run): not a regression.
    code, out, _ = run_sim(tmp_path, "slow8", 450, "--baseline", str(fast_run))
    assert code == 0 and "not compared: too few turns for p95 (n=8/8, needs 100" in out, out
    sessions = ("--sessions", "50")                 # two turns each: 100 turns per run
    code, out, fast = run_sim(tmp_path, "fast", 300, *sessions)
    assert code == 0, out
    code, out, slow = run_sim(tmp_path, "slow", 450, *sessions, "--baseline", str(fast))
    assert code == 4, out
    assert "FAIL baseline ttfa_ms.p95 [local/sim-realtime]" in out
    assert "baseline ttfa_ms.p99 [local/sim-realtime]: not compared" in out   # needs 500
    # The same run against itself: no regression.
    same = rtbench("gate", str(slow), "--baseline", str(slow), "--budget", "errors == 0")
    assert same.returncode == 0, same.stdout
    # A tolerance wider than the +50% shift passes too (wide enough for load on either run).
    wide = rtbench("gate", str(slow), "--baseline", str(fast), "--baseline-tolerance", "150%")
    assert wide.returncode == 0, wide.stdout


def _turns(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"target": "t", "status": "ok", "session_idx": np.arange(len(values)),
                         "ttfa_ms": values})


def test_baseline_flags_a_regression_only_when_its_interval_clears_the_tolerance() -> None:
    rng = np.random.default_rng(3)
    base = _turns(rng.lognormal(np.log(700), 0.4, 600))
    slower = _turns(rng.lognormal(np.log(1000), 0.4, 600))
    slightly = _turns(rng.lognormal(np.log(720), 0.4, 600))
    regressed = [not v.passed for v in compare(base, slower, ["ttfa_ms"], 0.10)]
    assert regressed == [True, True]
    # +3% is within a 10% tolerance even where it is statistically real.
    assert all(v.passed for v in compare(base, slightly, ["ttfa_ms"], 0.10))
    # Fifteen turns are too few for a p95 (a chance +35 % would fail a tolerance alone).
    rng = np.random.default_rng(23)
    small_a = _turns(rng.lognormal(np.log(700), 0.4, 15))
    small_b = _turns(rng.lognormal(np.log(700), 0.4, 15))
    (p95, _p99) = compare(small_a, small_b, ["ttfa_ms"], 0.10)
    assert p95.passed and "not compared: too few turns for p95 (n=15/15" in p95.message


def test_two_runs_of_one_distribution_are_not_called_a_regression() -> None:
    # 100 turns each, as the README's CI example makes: 150 seeded pairs of one lognormal. An
    # interval that merely excluded zero with the point over the tolerance flagged 1.7 % of
    # such p95 comparisons (seeded, 300 pairs); the interval above the tolerance flags 0.3 %.
    rng = np.random.default_rng(5)
    flagged = 0
    for _ in range(150):
        a, b = (_turns(rng.lognormal(np.log(700), 0.4, 100)) for _ in range(2))
        (p95, p99) = compare(a, b, ["ttfa_ms"], 0.10, resamples=400)
        assert p99.passed and "not compared" in p99.message
        flagged += not p95.passed
    assert flagged <= 1, flagged


def test_a_reasoning_model_run_is_gated_on_the_answer(tmp_path: Path, run_sim: RunSim) -> None:
    # 300 ms to the first byte, 250 ms of leading silence, a 400 ms preamble: the answer is
    # heard at least 950 ms after T_eos (more only if this machine's loop is late)
    code, out, run = run_sim(tmp_path, "reasoning", 300, "--sim-preamble-ms", "400",
                             "--sim-silence-pad-ms", "250",
                             "--budget", "ttfa_answer.min > 949ms",
                             "--budget", "ttfa_answer.p95 < 2s",
                             "--budget", "silence_pad.min > 249ms")
    assert code == 0, out
    assert "PASS ttfa_answer.p95 < 2s" in out and "PASS silence_pad.min > 249ms" in out
    turns = pd.read_parquet(run / "turns.parquet")
    assert (turns["output_items"] == 2).all() and (turns["preamble_audio_ms"] == 650).all()
    assert (turns["ttfb_ms"] >= 300 - 1e-3).all() and not turns["premature"].any()
