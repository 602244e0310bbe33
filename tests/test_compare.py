"""rtbench compare: within one multi-target run and across runs, with bootstrap intervals.

The end-to-end test drives three simulator processes (two with the same fast profile, one slow)
in one interleaved run. The simulators are seeded, so the set of injected latencies is fixed and
the test is deterministic up to ~1 ms of scheduling jitter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from rtbench.analysis.comparison import (
    Group,
    Settings,
    compare_pair,
    compare_runs,
    compare_within,
    load_groups,
)
from rtbench.config.scenario import ConfigError
from rtbench.metrics.records import TurnRecord
from rtbench.orchestrate.execute import embedded_simulator
from rtbench.results.store import ResultsError

from conftest import REPO


def rtbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtbench", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=180)


def fake_run(root: Path, run_id: str, ttfa: dict[str, list[float]], sessions: dict[str, int],
             turns_per_session: int = 1) -> Path:
    """A run directory as rtbench writes it, with the given ok-turn TTFAs per target."""
    run = root / run_id
    run.mkdir(parents=True)
    targets = [{"name": n, "region": n.split("/")[0], "model": "m", "sessions": s}
               for n, s in sessions.items()]
    (run / "manifest.json").write_text(json.dumps({
        "run_id": run_id, "targets": targets, "status": "complete",
        "scenario": {"turns_per_session": turns_per_session}}))
    with open(run / "turns.jsonl", "wb") as fh:
        for name, values in ttfa.items():
            for i, v in enumerate(values):
                rec = TurnRecord(target=name, region=name.split("/")[0], model="m", session_idx=i,
                                 session_id=None, turn_idx=0, utterance="u", status="ok",
                                 ttfa_ms=float(v))
                fh.write(orjson.dumps(rec.as_dict()) + b"\n")
    return run


def _by_metric(df: pd.DataFrame, a: str, b: str) -> dict[str, dict]:
    rows = df[(df["a"] == a) & (df["b"] == b)]
    return {r["metric"]: r for r in rows.to_dict("records")}


def test_compare_pair_finds_error_rate_difference_and_reports_missing_data() -> None:
    a = Group("r", "a", np.array([300.0] * 20), np.zeros(20))
    b = Group("r", "b", np.array([], dtype=float), np.ones(20))
    rows = {r["metric"]: r for r in compare_pair(a, b, Settings(n_resamples=500))}
    assert rows["ttfa_p50"]["verdict"] == "no data" and rows["ttfa_p50"]["n_b"] == 0
    err = rows["error_rate"]
    assert (err["diff"], err["ci_lo"], err["ci_hi"]) == (1.0, 1.0, 1.0)
    assert err["verdict"] == "B more errors"


def test_compare_two_runs_by_target_and_single_target_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    fast = list(300 * np.exp(rng.normal(0, 0.1, 120)))
    slow = list(380 * np.exp(rng.normal(0, 0.1, 120)))
    same = list(300 * np.exp(rng.normal(0, 0.1, 120)))
    a = fake_run(tmp_path, "a", {"x/m": fast, "y/m": fast}, {"x/m": 120, "y/m": 130})
    b = fake_run(tmp_path, "b", {"x/m": slow, "y/m": same}, {"x/m": 120, "y/m": 120})
    df = compare_runs(a, b)
    x, y = _by_metric(df, "x/m", "x/m"), _by_metric(df, "y/m", "y/m")
    assert x["ttfa_p50"]["verdict"] == "B slower" and 60 < x["ttfa_p50"]["diff"] < 100
    assert x["ttfa_p95"]["verdict"] == "B slower"          # 120 turns: enough for p95
    assert x["ttfa_p99"]["verdict"].startswith("too few samples (need 500")
    assert y["ttfa_p50"]["verdict"] == "not resolvable"
    # run a's y planned 130 turns, only 120 completed: 10 failures count in the error rate.
    assert y["error_rate"]["verdict"] == "B fewer errors"
    assert y["error_rate"]["a_value"] == pytest.approx(10 / 130)
    solo_a = fake_run(tmp_path, "sa", {"east/m": fast}, {"east/m": 120})
    solo_b = fake_run(tmp_path, "sb", {"west/m": slow}, {"west/m": 120})
    assert _by_metric(compare_runs(solo_a, solo_b), "east/m", "west/m")["ttfa_p50"][
        "verdict"] == "B slower"
    with pytest.raises(ConfigError, match="share no target"):
        compare_runs(a, solo_b)
    with pytest.raises(ConfigError, match="single target"):
        compare_within(solo_a)
    with pytest.raises(ConfigError, match="has no target 'nope'"):
        compare_within(a, reference="nope")
    with pytest.raises(ResultsError, match="run directory not found"):
        compare_within(tmp_path / "missing")


def test_compare_cli_writes_csv_and_json_and_prints_the_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    a = fake_run(tmp_path, "a", {"x/m": list(300 + rng.normal(0, 20, 50))}, {"x/m": 50})
    b = fake_run(tmp_path, "b", {"x/m": list(400 + rng.normal(0, 20, 50))}, {"x/m": 50})
    out = tmp_path / "cmp"
    proc = rtbench("compare", str(a), str(b), "--out", str(out), "--resamples", "500")
    assert proc.returncode == 0, proc.stderr
    assert "B slower" in proc.stdout and "95% CI" in proc.stdout and "a:x/m" in proc.stdout
    csv = pd.read_csv(out / "compare.csv")
    assert list(csv["metric"]) == ["ttfa_p50", "ttfa_p95", "ttfa_p99", "error_rate"]
    doc = json.loads((out / "compare.json").read_text())
    assert doc["n_resamples"] == 500 and len(doc["rows"]) == 4
    proc = rtbench("compare", str(a))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "single target" in proc.stderr


SIMS = {  # region label -> simulator flags (first audio median, p99; seed)
    "eastus2": ["--first-audio-ms", "300", "--first-audio-p99-ms", "400", "--seed", "11"],
    "eastus2b": ["--first-audio-ms", "300", "--first-audio-p99-ms", "400", "--seed", "12"],
    "swedencentral": ["--first-audio-ms", "600", "--first-audio-p99-ms", "800", "--seed", "13"],
}


@pytest.mark.integration
@pytest.mark.slow
def test_multi_target_run_then_compare_finds_the_injected_difference_only(
        tmp_path: Path, short_audio: Path) -> None:
    scenario = tmp_path / "short.toml"
    scenario.write_text(
        f'[scenario]\naudio_dir = "{short_audio}"\nutterances = ["en_timer", "en_weather"]\n'
        "turns_per_session = 2\ntrailing_silence_ms = 300\nthink_time_ms = 0\n"
        "[session.turn_detection]\nsilence_duration_ms = 200\n")
    common = ["--response-audio-ms", "300", "--realtime-factor", "4"]
    with ExitStack() as stack:
        bases = {r: stack.enter_context(embedded_simulator(flags + common))
                 for r, flags in SIMS.items()}
        targets = tmp_path / "targets.toml"
        targets.write_text("".join(
            f'[[target]]\nname = "{r}/gpt-realtime"\nprovider = "azure"\nregion = "{r}"\n'
            f'endpoint = "{base}"\ndeployment = "gpt-realtime"\nauth = "none"\n'
            for r, base in bases.items()))
        proc = rtbench("--targets", str(targets), "--scenario", str(scenario),
                       "--sessions-per-target", "6", "--interleave", "random",
                       "--results", str(tmp_path), "--run-id", "multi", "--no-report")
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "multi"
    turns = pd.read_parquet(run / "turns.parquet")
    assert (turns["status"] == "ok").all() and len(turns) == 36
    print(turns.groupby("region")["ttfa_ms"].describe())

    proc = rtbench("compare", str(run), "--reference", "eastus2/gpt-realtime")
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    df = pd.read_csv(run / "compare.csv")
    slow = _by_metric(df, "eastus2/gpt-realtime", "swedencentral/gpt-realtime")
    twin = _by_metric(df, "eastus2/gpt-realtime", "eastus2b/gpt-realtime")
    assert slow["ttfa_p50"]["verdict"] == "B slower"
    assert 200 < slow["ttfa_p50"]["diff"] < 400 and slow["ttfa_p50"]["ci_lo"] > 100
    assert twin["ttfa_p50"]["verdict"] == "not resolvable"
    assert abs(twin["ttfa_p50"]["diff"]) < 60
    for rows in (slow, twin):
        assert rows["ttfa_p99"]["verdict"].startswith("too few samples")
        assert rows["error_rate"]["verdict"] == "not resolvable"
        # one message item per response: the answer is heard when the response is
        assert rows["ttfa_answer_p50"]["diff"] == rows["ttfa_p50"]["diff"]
    # Every pair without a reference: 3 pairs x 7 metrics (TTFA, the answer's, error rate).
    assert len(compare_within(run, settings=Settings(n_resamples=200))) == 21


def test_runs_of_different_turn_modes_are_never_compared(tmp_path: Path) -> None:
    import orjson

    from rtbench.analysis.comparison import compare_runs
    from rtbench.config.scenario import ConfigError
    from rtbench.metrics.records import TurnRecord

    runs = []
    for mode in ("server_vad", "manual"):
        run = tmp_path / mode
        run.mkdir()
        (run / "manifest.json").write_text('{"scenario": {"turns_per_session": 1}, "targets": []}')
        rec = TurnRecord("t", "r", "m", 0, "sess_x", 0, "u", status="ok", ttfa_ms=500.0,
                         turn_mode=mode)
        (run / "turns.jsonl").write_bytes(orjson.dumps(rec.as_dict()) + b"\n")
        runs.append(run)
    with pytest.raises(ConfigError, match="different turn modes"):
        compare_runs(runs[0], runs[1])


def test_the_answer_after_a_preamble_is_compared_and_premature_turns_are_not(
        tmp_path: Path) -> None:
    run = fake_run(tmp_path, "r", {"a/m": [300.0] * 30, "b/m": [300.0] * 30},
                   {"a/m": 31, "b/m": 30})
    with open(run / "turns.jsonl", "ab") as fh:  # a/m answered once before the user finished
        rec = TurnRecord(target="a/m", region="a", model="m", session_idx=30, session_id=None,
                         turn_idx=0, utterance="u", status="ok", ttfa_ms=-200.0, premature=True)
        fh.write(orjson.dumps(rec.as_dict()) + b"\n")
    groups = load_groups(run)
    assert len(groups["a/m"].ttfa_ms) == 30 and groups["a/m"].ttfa_ms.min() == 300.0
    assert groups["a/m"].failed.sum() == 0  # premature is not a failure: it answered
    rng = np.random.default_rng(3)
    a = Group("r", "a", np.full(60, 300.0), np.zeros(60), 900 + rng.normal(0, 10, 60))
    b = Group("r", "b", np.full(60, 300.0), np.zeros(60), 1300 + rng.normal(0, 10, 60))
    rows = {r["metric"]: r for r in compare_pair(a, b, Settings(n_resamples=300))}
    assert list(rows) == ["ttfa_p50", "ttfa_p95", "ttfa_p99", "ttfa_answer_p50",
                          "ttfa_answer_p95", "ttfa_answer_p99", "error_rate"]
    assert rows["ttfa_answer_p50"]["verdict"] == "B slower"
    assert 350 < rows["ttfa_answer_p50"]["diff"] < 450
