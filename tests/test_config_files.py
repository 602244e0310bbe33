"""Every TOML rtbench reads goes through one loader: each way a path can be wrong is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtbench.analysis.gate import load_budget_file
from rtbench.config.scenario import ConfigError, load_scenario
from rtbench.config.targets import load_targets
from rtbench.sim.faults import FaultPlanError, load_plan


@pytest.mark.parametrize("load, error", [(load_scenario, ConfigError), (load_budget_file, ConfigError),
                                         (load_targets, ConfigError), (load_plan, FaultPlanError)])
@pytest.mark.parametrize("make, says", [
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"name = \"\xff\xfe\"\n"), "not UTF-8"),
    (lambda p: p.write_text("[scenario\n", encoding="utf-8"), "invalid TOML"),
])
def test_each_bad_path_is_one_line_of_the_callers_error(tmp_path: Path, load, error, make, says) -> None:
    path = tmp_path / "file.toml"
    make(path)
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert says in message and str(path) in message and "\n" not in message


AUDIO = Path(__file__).resolve().parent.parent / "workloads" / "audio"


@pytest.mark.parametrize("table, line, says", [
    ("scenario", "turn_timeout_s = nan", "must be a finite number"),
    ("scenario", "connect_timeout_s = -1", "must be greater than 0"),
    ("scenario", "think_time_ms = -5", "must be at least 0"),
    ("scenario", "trailing_silence_ms = -1", "must be at least 0"),
    ("scenario", "barge_in_after_ms = -100", "must be at least 0"),
    ("scenario", "turns_per_session = 0", "must be at least 1"),
    ("session", "output_modalities = 5", "output_modalities must be"),
    ("session", "speed = inf", "must be a finite number"),
    ("session", "max_output_tokens = 0", "within 1..4096"),
    ("session", 'max_output_tokens = "lots"', "must be int"),
    ("session.turn_detection", 'eagerness = "eager"', "must be one of 'low', 'medium'"),
    ("session.turn_detection", "silence_duration_ms = -1", "must be within 0..60000"),
    ("session.turn_detection", "silence_duration_ms = 1e300", "must be int"),
    ("session.turn_detection", "idle_timeout_ms = -1", "must be within 0..3600000"),
    ("session.turn_detection", 'type = "semantic_vad"\nidle_timeout_ms = 5000',
     "idle_timeout_ms is for type \"server_vad\" only"),
    ("session.reasoning", 'effort = "maximal"',
     "session.reasoning.effort must be one of 'minimal', 'low', 'medium', 'high', 'xhigh'"),
    ("session.reasoning", 'level = "low"', "session.reasoning: unknown key 'level'"),
    ("session", 'reasoning = "low"', "session.reasoning must be a table"),
    ("session", 'noise_reduction = "studio"', "must be one of 'near_field', 'far_field'"),
    ("session.noise_reduction", "strength = -0.5", "noise_reduction.strength must be at least 0"),
    ("session.noise_reduction", 'strength = "max"', "noise_reduction.strength must be float"),
    ("session.noise_reduction", "level = 1", "unknown key 'level'"),
    ("session.turn_detection", 'type = "vad"', "must be one of 'server_vad'"),
])
def test_each_bad_scenario_value_is_one_line(tmp_path: Path, table: str, line: str, says: str) -> None:
    path = tmp_path / "sc.toml"
    base = f'[scenario]\naudio_dir = "{AUDIO}"\nutterances = ["en_timer"]\n'
    body = base + ("" if table == "scenario" else f"[{table}]\n") + line + "\n"
    if table == "scenario":
        body = base + line + "\n"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert says in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_every_accepted_session_key_reaches_the_session(tmp_path: Path) -> None:
    path = tmp_path / "sc.toml"
    path.write_text(f'[scenario]\naudio_dir = "{AUDIO}"\nutterances = ["en_timer"]\n'
                    "[session]\nmax_output_tokens = 300\n"
                    "[session.turn_detection]\nidle_timeout_ms = 6000\n", encoding="utf-8")
    session = load_scenario(path).session
    assert session.max_output_tokens == 300
    assert session.turn_detection is not None and session.turn_detection.idle_timeout_ms == 6000
    assert (session.reasoning_effort, session.noise_reduction_strength) == (None, None)
    path.write_text(f'[scenario]\naudio_dir = "{AUDIO}"\nutterances = ["en_timer"]\n'
                    '[session.reasoning]\neffort = "low"\n'
                    '[session.noise_reduction]\ntype = "far_field"\nstrength = 0.5\n',
                    encoding="utf-8")
    session = load_scenario(path).session
    assert (session.reasoning_effort, session.noise_reduction,
            session.noise_reduction_strength) == ("low", "far_field", 0.5)


def test_a_missing_baseline_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rtbench", "--baseline", str(tmp_path / "nope"),
                           "--results", str(tmp_path / "results")], text=True,
                          capture_output=True, timeout=60)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
    assert not (tmp_path / "results").exists()      # refused before any run directory or session


def test_audio_and_workers_are_checked_before_the_simulator_starts(tmp_path: Path) -> None:
    """``rtbench run`` calls RunOptions.check() before it starts any process or socket."""
    from rtbench.cli import build_parser
    from rtbench.client.workload import WorkloadError
    from rtbench.commands.run import run_options

    sc = tmp_path / "sc.toml"
    sc.write_text(f'[scenario]\naudio_dir = "{AUDIO}"\nutterances = ["en_timer", "missing"]\n',
                  encoding="utf-8")
    opts = run_options(build_parser()[0].parse_args(["run", "--scenario", str(sc)]))
    with pytest.raises(WorkloadError, match="audio file not found"):
        opts.check()
    opts = run_options(build_parser()[0].parse_args(["run", "--sessions", "2", "--workers", "3"]))
    with pytest.raises(ConfigError, match="--workers must be between 1 and"):
        opts.check()


def test_target_as_a_list_of_values_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text("target = [1, 2]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be tables"):
        load_targets(path)
