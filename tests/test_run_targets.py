"""``rtbench run`` against real-target configurations, end to end against a simulator process
that requires an API key: secrets never leak, multi-target runs, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from rtbench.orchestrate.execute import embedded_simulator
from rtbench.protocol.diagnose import PREVIEW_HINT

from conftest import REPO, rtbench_in_process

KEY = "sk-rtbench-SECRET-5f3a9c1e7b2d"
WRONG_KEY = "sk-rtbench-WRONG-0a1b2c3d4e5f"


def rtbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rtbench", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120, env=env)


@pytest.fixture
def short_scenario(tmp_path: Path, short_audio: Path) -> Path:
    """One short turn per session (this module's scenario file, on conftest's short audio)."""
    path = tmp_path / "short.toml"
    path.write_text(
        f'[scenario]\naudio_dir = "{short_audio}"\nutterances = ["en_timer", "en_weather"]\n'
        "turns_per_session = 1\ntrailing_silence_ms = 300\nthink_time_ms = 0\n"
        "turn_timeout_s = 10.0\n[session.turn_detection]\nsilence_duration_ms = 200\n")
    return path


@pytest.fixture
def keyed_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A simulator child process that accepts only KEY; yields its ws:// base."""
    monkeypatch.setenv("RTBENCH_SIM_KEY", KEY)
    with embedded_simulator(["--api-key-env", "RTBENCH_SIM_KEY", "--first-audio-ms", "200",
                             "--response-audio-ms", "300", "--delta-ms", "100"]) as base:
        yield base


def _leaks(run_dir: Path, texts: list[str], secrets: list[str]) -> list[str]:
    hits = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.name}: {s}" for s in secrets if s.encode() in data]
    hits += [f"output: {s}" for s in secrets for t in texts if s in t]
    return hits


def test_leak_check_itself_finds_a_planted_key(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"\x00junk" + KEY.encode() + b"\x00")
    assert _leaks(tmp_path, [], [KEY]) == [f"x.parquet: {KEY}"]
    assert _leaks(tmp_path, ["stderr " + WRONG_KEY], [WRONG_KEY]) == [f"output: {WRONG_KEY}"]


@pytest.mark.integration
@pytest.mark.slow
def test_multi_target_run_with_keys_leaks_no_key_anywhere(
    keyed_sim: str, short_scenario: Path, tmp_path: Path
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(
        f'[[target]]\nname = "eastus2/gpt-realtime"\nprovider = "azure"\nregion = "eastus2"\n'
        f'endpoint = "{keyed_sim}"\ndeployment = "gpt-realtime"\napi_key_env = "T_KEY"\n'
        f'[[target]]\nname = "global/gpt-realtime"\nprovider = "openai"\nregion = "global"\n'
        f'endpoint = "{keyed_sim}"\nmodel = "gpt-realtime"\napi_key_env = "T_KEY"\n'
        f'[[target]]\nname = "westus/gpt-realtime"\nprovider = "azure"\nregion = "westus"\n'
        f'endpoint = "{keyed_sim}"\ndeployment = "gpt-realtime"\nprotocol = "preview"\n'
        f'api_key_env = "T_WRONG"\n')
    env = {**os.environ, "T_KEY": KEY, "T_WRONG": WRONG_KEY}
    proc = rtbench("--targets", str(targets), "--scenario", str(short_scenario),
                   "--sessions-per-target", "2", "--interleave", "random", "--seed", "3",
                   "--results", str(tmp_path / "results"), "--run-id", "multi", env=env)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "results" / "multi"
    turns = pd.read_parquet(run / "turns.parquet")
    errors = pd.read_parquet(run / "errors.parquet")
    # The right key was accepted on both GA paths; the wrong one refused on the preview path.
    assert sorted(turns[turns["status"] == "ok"]["target"].unique()) == [
        "eastus2/gpt-realtime", "global/gpt-realtime"]
    assert len(turns) == 4 and set(errors["target"]) == {"westus/gpt-realtime"}
    assert list(errors["kind"]) == ["http_status"] * 2
    summary = pd.read_csv(run / "summary.csv")
    assert list(summary["region"]) == ["eastus2", "global", "westus"]
    assert list(summary["error_rate"]) == [0.0, 0.0, 1.0]
    assert ("target westus/gpt-realtime: every handshake refused with HTTP 401: Access denied"
            in proc.stderr)
    manifest = (run / "manifest.json").read_text()
    assert "api-key header, key from $T_KEY" in manifest and '"random"' in manifest
    assert _leaks(run, [proc.stdout, proc.stderr], [KEY, WRONG_KEY]) == []


@pytest.mark.integration
@pytest.mark.slow
def test_one_off_flags_and_dialect_mismatch_is_explained(
    keyed_sim: str, short_scenario: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    proc = rtbench("--provider", "openai", "--endpoint", keyed_sim, "--model", "m", "--region",
                   "lab", "--sessions", "1", "--scenario", str(short_scenario),
                   "--results", str(tmp_path), "--run-id", "oneoff", "--no-report", env=env)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "oneoff" / "summary.csv").loc[0, "turns_ok"] == 1
    # GA payloads on the Azure preview path: the simulator answers unknown_parameter session.type.
    with embedded_simulator([]) as base:
        url = f"{base}/openai/realtime?api-version=2025-04-01-preview&deployment=d"
        proc = rtbench("--url", url, "--dialect", "ga", "--sessions", "2", "--scenario",
                       str(short_scenario), "--results", str(tmp_path), "--run-id", "mismatch",
                       "--no-report")
    assert proc.returncode == 3
    assert f"every session failed during set-up: {PREVIEW_HINT}" in proc.stderr
    errors = pd.read_parquet(tmp_path / "mismatch" / "errors.parquet")
    assert list(errors["code"]) == ["unknown_parameter"] * 2
    # A --url target is labelled from its URL: region local, model the deployment.
    assert set(zip(errors["region"], errors["model"], strict=True)) == {("local", "d")}


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--provider", "azure", "--resource", "r", "--deployment", "d"], {},
     "target default/d: environment variable AZURE_OPENAI_API_KEY is not set"),
    (["--provider", "openai", "--model", "m", "--api-key-env", "NOT_SET_ANYWHERE"], {},
     "environment variable NOT_SET_ANYWHERE is not set"),
    (["--url", "http://example.com/x"], {}, "--url: bad URL"),
    (["--url", "ws://example.com/v1/realtime?model=m"], {}, "plaintext ws:// to example.com"),
    (["--provider", "openai", "--model", "m", "--protocol", "preview"], {"OPENAI_API_KEY": "k"},
     "Azure's dated api-version path only"),
    (["--resource", "r"], {}, "--resource describes a one-off target: give --provider"),
    (["--target", "x"], {}, "give --targets FILE too"),
    (["--targets", "workloads/targets.example.toml", "--target", "nope"], {}, "no target named"),
    (["--provider", "openai", "--model", "m", "--header", "novalue"], {}, "--header must be"),
])
def test_config_errors_are_one_line_and_exit_2(args: list[str], env: dict[str, str],
                                               message: str, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
    proc = rtbench_in_process(*args, "--results", str(tmp_path), env={**clean, **env})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not list(tmp_path.iterdir())  # nothing started


def test_unknown_provider_in_a_targets_file(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text('[[target]]\nprovider = "gcp"\nmodel = "m"\n')
    proc = rtbench_in_process("--targets", str(f), "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "unknown provider 'gcp'" in proc.stderr
