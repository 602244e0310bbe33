"""Latency profiles: TOML loading, flag precedence, and the capacity knee."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from rtbench.commands.simflags import add_profile_args, sim_argv, simulator_from
from rtbench.config.scenario import ConfigError
from rtbench.protocol import Dialect, SessionConfig, TurnDetection
from rtbench.sim import Dist, Profile
from rtbench.sim.faults import load_document
from rtbench.sim.profile import ProfileError, profile_from_document

from simdrive import Driver, tone

PROFILES = """
[profiles.eastus2]
handshake_ms = { median = 120, p99 = 400 }
first_audio_ms = { median = 650, p99 = 1400 }
vad_delay_ms = 30
delta_ms = 40
realtime_factor = 3
knee_sessions = 50
per_session_over_knee_ms = 12.5

[profiles.swedencentral]
first_audio_ms = 900
"""


def test_named_profiles_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PROFILES)
    doc = load_document(path)
    east = profile_from_document(doc, str(path), "eastus2")
    assert east.name == "eastus2"
    assert east.handshake == Dist(120, 400) and east.first_audio == Dist(650, 1400)
    assert east.vad_delay == Dist(30) and east.delta_ms == 40 and east.realtime_factor == 3.0
    assert (east.knee_sessions, east.per_session_over_knee_ms) == (50, 12.5)
    assert east.response_audio_ms == Profile().response_audio_ms  # untouched keys keep defaults
    assert profile_from_document(doc, "p", "swedencentral").first_audio == Dist(900)
    with pytest.raises(ProfileError, match="choose one by name"):
        profile_from_document(doc, "p")
    with pytest.raises(ProfileError, match=r"no \[profiles.westus\]"):
        profile_from_document(doc, "p", "westus")


@pytest.mark.parametrize(("table", "message"), [
    ({"first_audio": 3}, "unknown key 'first_audio'"),
    ({"first_audio_ms": {"p99": 3}}, "must be a number or"),
    ({"first_audio_ms": {"median": 500, "p99": 100}}, "bad distribution"),
    ({"delta_ms": 0}, "must be positive"),
    ({"delta_ms": "40"}, "delta_ms must be int"),
    ({"preamble_probability": 1.5}, "preamble_probability within 0..1"),
    ({"silence_pad_ms": -1}, "must be non-negative"),
])
def test_bad_profile_tables(table: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        profile_from_document({"profile": table}, "p.toml")


def _parse(*argv: str, prefix: str = "") -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_profile_args(p, prefix)
    return p.parse_args(list(argv))


def test_flags_override_the_file_and_the_fault_plan_may_carry_the_profile(tmp_path: Path) -> None:
    plan = tmp_path / "faults.toml"
    plan.write_text('seed = 4\n[[fault]]\nkind = "stall"\nevery = 3\n'
                    '[profile]\nfirst_audio_ms = { median = 500, p99 = 900 }\ndelta_ms = 50\n')
    profile, faults = simulator_from(_parse("--faults", str(plan), "--delta-ms", "20",
                                            "--fault", "tcp_drop=0.5"))
    assert profile.first_audio == Dist(500, 900) and profile.delta_ms == 20
    assert [r.kind for r in faults.rules] == ["stall", "tcp_drop"] and faults.seed == 4
    profile, _ = simulator_from(_parse("--faults", str(plan), "--first-audio-ms", "300"))
    assert profile.first_audio == Dist(300, 600)
    assert simulator_from(_parse())[0] == Profile()


def test_run_forwards_only_the_sim_flags_given() -> None:
    ns = _parse("--sim-faults", "x.toml", "--sim-fault", "stall=0.1", "--sim-knee-sessions", "5",
                prefix="sim-")
    argv = sim_argv(ns)
    assert argv[argv.index("--faults") + 1].endswith("x.toml")
    assert argv[argv.index("--knee-sessions") + 1] == "5"
    assert argv[-2:] == ["--fault", "stall=0.1"] and "--delta-ms" not in argv


def test_reasoning_model_flags_reach_the_profile_and_the_embedded_simulator(tmp_path: Path
                                                                          ) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[profile]\npreamble_ms = 400\nanswer_delay_ms = { median = 300, p99 = 900 }\n")
    profile, _ = simulator_from(_parse("--profile", str(path), "--silence-pad-ms", "250",
                                       "--preamble-probability", "0.5"))
    assert (profile.preamble_ms, profile.silence_pad_ms, profile.preamble_probability) == (
        400, 250, 0.5)
    assert profile.answer_delay == Dist(300, 900)
    argv = sim_argv(_parse("--sim-preamble-ms", "400", "--sim-answer-delay-ms", "150",
                           prefix="sim-"))
    assert argv == ["--preamble-ms", "400", "--answer-delay-ms", "150.0"]
    assert simulator_from(_parse(*argv))[0].answer_delay == Dist(150.0)


def test_bad_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        simulator_from(_parse("--profile", str(tmp_path / "none.toml")))
    with pytest.raises(ConfigError, match="--profile-name needs --profile"):
        simulator_from(_parse("--profile-name", "x"))
    with pytest.raises(ConfigError, match="unknown fault kind"):
        simulator_from(_parse("--fault", "nope=1"))


def test_capacity_knee_delays_first_audio_by_sessions_over_the_knee() -> None:
    profile = Profile(first_audio=Dist(400.0), response_audio_ms=200, knee_sessions=4,
                      per_session_over_knee_ms=25.0)
    first_audio = []
    for active in (1, 4, 5, 10):
        d = Driver(Dialect.GA, profile)
        d.sim.load = lambda n=active: n  # type: ignore[misc]
        d.configure(SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200)))
        t_eos = d.stream(tone(500))
        d.stream(np.zeros(24 * 1200, dtype=np.int16))
        first_audio.append(round((d.first("response.output_audio.delta")[0] - t_eos) * 1000, 6))
    assert first_audio == [400, 400, 425, 550]
