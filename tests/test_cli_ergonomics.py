"""The command line as a new user meets it: runs from any directory after ``pip install``,
``rtbench init``, one-line usage errors with suggestions, durations with units."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rtbench import __version__
from rtbench.commands.argtypes import parse_duration

from conftest import REPO
from test_cli import rtbench

SMALLEST = ("--sessions", "2", "--turns", "1", "--progress", "off", "--no-report",
            "--sim-first-audio-ms", "100", "--sim-response-audio-ms", "200")


def run_manifest(results: Path) -> dict[str, object]:
    (run_dir,) = results.iterdir()
    manifest: dict[str, object] = json.loads((run_dir / "manifest.json").read_text())
    return manifest


def test_default_scenario_is_found_from_any_directory(tmp_path: Path) -> None:
    proc = rtbench(*SMALLEST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results").is_dir()  # results land where the user is, as before


def test_an_installed_wheel_carries_its_workloads(tmp_path: Path) -> None:
    """Build the wheel ``pip install .`` would install, unpack it, run it from elsewhere."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(REPO)],
                   check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("rtbench-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    shipped = {p.relative_to(site / "rtbench" / "workloads")
               for p in (site / "rtbench" / "workloads").rglob("*") if p.is_file()}
    in_repo = {p.relative_to(REPO / "workloads")
               for p in (REPO / "workloads").rglob("*") if p.is_file()}
    assert shipped == in_repo
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the editable install
    proc = subprocess.run([sys.executable, "-m", "rtbench", *SMALLEST, "--results", "r"],
                          cwd=work, env=env, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    scenario = run_manifest(work / "r")["scenario"]
    assert isinstance(scenario, dict)
    assert scenario["audio_dir"] == str(site / "rtbench" / "workloads" / "audio")


def test_init_writes_an_editable_copy_and_keeps_existing_files(tmp_path: Path) -> None:
    proc = rtbench("init", "mine", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mine = tmp_path / "mine"
    for name in ("default.toml", "targets.example.toml", "budgets.example.toml",
                 "faults.example.toml", "audio/en_weather.wav", "audio/PROVENANCE.md"):
        assert (mine / name).is_file(), name
    assert "rtbench --scenario mine/default.toml" in proc.stdout
    edited = (mine / "default.toml").read_text().replace('name = "default"', 'name = "mine"')
    (mine / "default.toml").write_text(edited)
    again = rtbench("init", "mine", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "exists: nothing written" in again.stderr and "--force" in again.stderr
    assert 'name = "mine"' in (mine / "default.toml").read_text()  # nothing overwritten
    proc = rtbench("--scenario", "mine/default.toml", *SMALLEST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    scenario = run_manifest(tmp_path / "results")["scenario"]
    assert isinstance(scenario, dict) and scenario["name"] == "mine"
    assert rtbench("init", "mine", "--force", cwd=tmp_path).returncode == 0
    assert 'name = "default"' in (mine / "default.toml").read_text()


@pytest.mark.parametrize(("text", "unit", "value"), [
    ("30s", "s", 30.0), ("5m", "s", 300.0), ("1h30m", "s", 5400.0), ("250ms", "s", 0.25),
    ("1m0.5s", "s", 60.5), (".5s", "s", 0.5), ("12", "s", 12.0), ("0", "s", 0.0),
    ("1.5s", "ms", 1500.0), ("700", "ms", 700.0), ("250us", "ms", 0.25), ("2h", "ms", 7.2e6),
])
def test_durations_read_go_units_and_plain_numbers_in_the_flags_unit(
        text: str, unit: str, value: float) -> None:
    assert parse_duration(text, unit) == pytest.approx(value)


@pytest.mark.parametrize(("text", "why"), [
    ("nan", "not a finite duration"), ("inf", "not a finite duration"),
    ("1e400", "not a finite duration"), ("-1", "must not be negative"),
    ("-2s", "must not be negative"), ("1h30", "is not a duration"), ("30x", "is not a duration"),
    ("", "is not a duration"), ("s", "is not a duration"),
])
def test_bad_durations_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_duration(text)


def one_line_error(*args: str) -> str:
    """stderr of a usage mistake, checked to be a single ``rtbench: error:`` line and exit 2."""
    proc = rtbench(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("rtbench: error: "), proc.stderr
    return proc.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["rnu"], "'run'?"),
    (["--sesions", "5"], "unknown flag --sesions, did you mean '--sessions'?"),
    (["sweep", "--strat=4"], "did you mean '--start'?"),
    (["serve", "--prot", "1"], "did you mean '--port'?"),
    (["--progress", "rihc"], "'rich'?"),
    (["--duration", "30x"], "argument --duration: '30x' is not a duration"),
    (["--ramp-up", "nan"], "argument --ramp-up: 'nan' is not a finite duration"),
    (["--retry-backoff=-1s"], "argument --retry-backoff: must not be negative"),
    (["--hlog-interval-s", "-2"], "argument --hlog-interval-s: must not be negative"),
    (["--sessions", "0"], "--sessions must be at least 1"),
    (["--reasoning-effort", "max"], "argument --reasoning-effort: invalid choice: 'max'"),
    (["--dialect", "beta", "--reasoning-effort", "low"],
     "session.reasoning.effort exists only in the GA protocol"),
    (["run", "stray"], "unexpected argument 'stray'"),
    (["gate"], "the following arguments are required: RUN"),
])
def test_usage_mistakes_are_one_line_with_the_fix(args: list[str], says: str) -> None:
    assert says in one_line_error(*args)


def test_version_and_help_texts() -> None:
    proc = rtbench("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"rtbench {__version__}"
    help_text = rtbench("run", "--help").stdout
    assert "--dialect {ga,beta}" in help_text and "event names --url" in help_text


@pytest.mark.parametrize(("args", "flag"), [
    (["probe", "--sessions", "5"], "--sessions"),
    (["probe", "--duration", "5s"], "--duration"),
    (["probe", "--budget", "ttfa.p95 < 1s"], "--budget"),
    (["calibrate", "--url", "ws://127.0.0.1:1/v1/realtime"], "--url"),
    (["calibrate", "--sim-first-audio-ms", "5"], "--sim-first-audio-ms"),
    (["calibrate", "--workers", "2"], "--workers"),
    (["sweep", "--junit", "j.xml"], "--junit"),
    (["sweep", "--no-report"], "--no-report"),
])
def test_each_command_takes_only_the_flags_it_uses(args: list[str], flag: str) -> None:
    assert f"unknown flag {flag}" in one_line_error(*args)


@pytest.mark.parametrize("args", [["--sessions", "0"], ["--sessions-per-target", "3"]])
def test_a_session_sweep_refuses_a_session_count_it_would_ignore(args: list[str]) -> None:
    """Its levels are the session counts; --sessions is the cap of an --over rate sweep only."""
    err = one_line_error("sweep", "--budget", "ttfa.p95 < 1s", *args)
    assert f"{args[0]} has no effect on sweep --over sessions" in err


def test_the_namespace_stays_in_the_command_layer() -> None:
    """Commands turn flags into typed options; no lower layer sees argparse."""
    below = [p for p in (REPO / "bench" / "rtbench").rglob("*.py")
             if p.parent.name != "commands" and p.name != "cli.py"]
    assert below
    assert [str(p) for p in below if "argparse" in p.read_text() or "Namespace" in p.read_text()] == []
