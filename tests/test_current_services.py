"""End to end from the CLI against simulator processes: a reasoning effort per target compared
with ``compare --by effort``, and a server that answers only in text (issue 15's done-when:
every turn ``no_audio``, exit 3). Loopback only, port 0; every process stops with its test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rtbench.orchestrate.execute import embedded_simulator

from conftest import REPO


def rtbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtbench", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=180)


def short(tmp_path: Path, short_audio: Path, *session: str) -> Path:
    scenario = tmp_path / "short.toml"
    scenario.write_text(
        f'[scenario]\naudio_dir = "{short_audio}"\nutterances = ["en_timer", "en_weather"]\n'
        "turns_per_session = 1\ntrailing_silence_ms = 300\nthink_time_ms = 0\n"
        "turn_timeout_s = 10.0\n" + "".join(session))
    return scenario


@pytest.mark.integration
@pytest.mark.slow
def test_targets_at_two_efforts_are_recorded_summarized_and_compared_by_effort(
        tmp_path: Path, short_audio: Path) -> None:
    scenario = short(tmp_path, short_audio, "[session.turn_detection]\nsilence_duration_ms = 200\n")
    # the simulator's default effort delays: minimal +0 ms, high +1000 ms over first audio
    with embedded_simulator(["--first-audio-ms", "300", "--first-audio-p99-ms", "300",
                             "--response-audio-ms", "200", "--realtime-factor", "4"]) as base:
        targets = tmp_path / "targets.toml"
        targets.write_text("".join(
            f'[[target]]\nname = "{effort}"\nprovider = "openai"\nendpoint = "{base}"\n'
            f'model = "gpt-realtime-2"\nauth = "none"\nreasoning = {{ effort = "{effort}" }}\n'
            for effort in ("minimal", "high")))
        proc = rtbench("--targets", str(targets), "--scenario", str(scenario),
                       "--sessions-per-target", "12", "--results", str(tmp_path),
                       "--run-id", "efforts", "--no-report")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[next(i for i, line in enumerate(proc.stdout.splitlines())
                                           if line.lstrip().startswith("region"))]
    assert "effort" in header.split() and "premature" in header.split()
    run = tmp_path / "efforts"
    turns = pd.read_parquet(run / "turns.parquet")
    assert (turns["status"] == "ok").all() and len(turns) == 24
    assert dict(zip(turns["target"], turns["effort"], strict=True)) == {"minimal": "minimal",
                                                                         "high": "high"}
    summary = pd.read_csv(run / "summary.csv")
    assert sorted(summary["effort"]) == ["high", "minimal"]
    proc = rtbench("compare", str(run), "--by", "effort", "--resamples", "300")
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(run / "compare.csv")
    p50 = rows[rows["metric"] == "ttfa_p50"].iloc[0]
    assert (p50["a"], p50["b"], p50["verdict"]) == ("minimal", "high", "B slower")
    # 1000 ms of injected effort delay; loopback and scheduling add a few ms either way
    assert 900 < p50["diff"] < 1100


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["manual", "server_vad"])
def test_a_text_only_server_fails_every_turn_no_audio_and_exits_3(
        tmp_path: Path, short_audio: Path, mode: str) -> None:
    session = ('[session]\nturn_detection = "none"\n' if mode == "manual"
               else "[session.turn_detection]\nsilence_duration_ms = 200\n")
    proc = rtbench("--sim-fault", "text_only=1", "--sessions", "3",
                   "--scenario", str(short(tmp_path, short_audio, session)),
                   "--results", str(tmp_path), "--run-id", "text", "--no-report")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    turns = pd.read_parquet(tmp_path / "text" / "turns.parquet")
    errors = pd.read_parquet(tmp_path / "text" / "errors.parquet")
    assert len(turns) == 3 and (turns["error_code"] == "no_audio").all()
    assert (turns["response_status"] == "completed").all() and turns["ttfa_ms"].isna().all()
    assert list(errors["kind"]) == ["no_audio"] * 3
    assert errors["message"].str.endswith("completed with no audio delta").all()
    summary = pd.read_csv(tmp_path / "text" / "summary.csv")
    assert (summary.loc[0, "no_audio"], summary.loc[0, "error_rate"]) == (3, 1.0)
