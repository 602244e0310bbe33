"""Sessions over real loopback sockets against the simulator: plumbing, not timing precision.

Rules: 127.0.0.1 on port 0 only, every run bounded by ``trio.fail_after``, and no assert a
loaded machine can break (timing is asserted exactly on the mock clock, test_exact_timing.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.results.store import RunStore
from rtbench.sim import Profile

from conftest import running_sim, sim_process

pytestmark = pytest.mark.integration

INJECTED_MS = 450.0


def _plans(sc: Scenario) -> list:
    return [plan_chunks(load_utterance(sc.audio_dir / f"{n}.wav"), sc.chunk_ms)
            for n in sc.utterances]


async def test_sessions_over_real_sockets_measure_at_least_the_injected_ttfa(
    short_scenario: Scenario, tmp_path: Path
) -> None:
    # The simulator in its own process, reached over TCP: the plumbing of a real run. What the
    # timing logic measures is asserted exactly on the mock clock (test_exact_timing.py); here
    # only bounds a loaded machine cannot break: nothing arrives before the injected latency.
    sc = replace(short_scenario, turns_per_session=2)
    with trio.fail_after(60), sim_process(
            "--first-audio-ms", str(INJECTED_MS), "--first-audio-p99-ms", str(INJECTED_MS),
            "--response-audio-ms", "400", "--realtime-factor", "4") as port:
        target = Target(name="sim", url=f"ws://127.0.0.1:{port}/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        await run_sessions(RunPlan(sc, [target], 4), _plans(sc), store)
    turns, errors = store.finalize("complete")
    assert len(errors) == 0, errors.to_dict("records")
    assert len(turns) == 8 and (turns["status"] == "ok").all()
    assert turns["session_id"].str.startswith("sess_").all()
    assert turns["ttfa_ms"].between(INJECTED_MS - 1e-3, INJECTED_MS + 2000).all(), turns["ttfa_ms"]
    # VAD: the stop is decided on the arrival of the chunk scheduled 200 ms (the window) after
    # the end-of-speech chunk, and T_eos is that chunk's actual send, late by at most the
    # turn's worst send lateness: so VAD + lateness is at least the window
    assert (turns["vad_ms"] + turns["send_lateness_max_ms"] >= 200 - 1e-3).all(), turns[
        ["vad_ms", "send_lateness_max_ms"]]
    assert (turns["vad_ms"] < 2000).all(), turns["vad_ms"]
    assert (turns["output_audio_ms"] == 400).all()
    assert (turns["output_tokens"] > 0).all()
    assert store.recorder.series("sim", "ttfa_ms").histogram.get_total_count() == 8


async def test_handshake_refusal_is_recorded_not_raised(scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, turns_per_session=1)
    async with running_sim(Profile(), api_key="right-key") as server:
        target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m",
                        headers=(("Authorization", "Bearer wrong-key"),))
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(10):
            await run_sessions(RunPlan(sc, [target], 3), _plans(sc), store)
    turns, errors = store.finalize("complete")
    assert len(turns) == 0
    assert list(errors["code"]) == ["invalid_api_key"] * 3
    assert (errors["phase"] == "connect").all() and (errors["kind"] == "http_status").all()
    assert "wrong-key" not in errors.to_json()
