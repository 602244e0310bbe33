"""Sessions over real loopback sockets against the simulator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import trio

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.protocol import Dialect, TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, Profile

from conftest import running_sim, sim_process

INJECTED_MS = 450.0


def _plans(sc: Scenario) -> list:
    return [plan_chunks(load_utterance(sc.audio_dir / f"{n}.wav"), sc.chunk_ms)
            for n in sc.utterances]


async def test_ten_sessions_two_turns_measure_the_injected_ttfa(
    scenario: Scenario, tmp_path: Path
) -> None:
    sc = replace(scenario, turns_per_session=2, trailing_silence_ms=300, think_time_ms=50,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    with sim_process("--first-audio-ms", str(INJECTED_MS), "--first-audio-p99-ms",
                     str(INJECTED_MS), "--response-audio-ms", "400", "--realtime-factor",
                     "4") as port:
        target = Target(name="sim", url=f"ws://127.0.0.1:{port}/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        await run_sessions(RunPlan(sc, [target], 10), _plans(sc), store)
    turns, errors = store.finalize("complete")
    assert len(errors) == 0, errors.to_dict("records")
    assert len(turns) == 20 and (turns["status"] == "ok").all()
    assert turns["session_id"].str.startswith("sess_").all()
    # TTFA is measured against what the simulator injected: within 5 ms.
    assert (turns["ttfa_ms"] - INJECTED_MS).abs().max() < 5.0, turns["ttfa_ms"].describe()
    # VAD delay = silence window (200 ms) rounded up to the 20 ms chunk, plus transit.
    assert turns["vad_ms"].between(195, 230).all(), turns["vad_ms"].describe()
    assert (turns["output_audio_ms"] == 400).all()
    assert (turns["output_tokens"] > 0).all()
    hist = store.recorder.series("sim", "ttfa_ms").histogram
    assert hist.get_total_count() == 20
    assert abs(hist.get_value_at_percentile(50) / 1000 - INJECTED_MS) < 5


async def test_beta_dialect_on_azure_preview_path(scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, turns_per_session=1, trailing_silence_ms=300, think_time_ms=0,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    async with running_sim(Profile(first_audio=Dist(300.0), response_audio_ms=200)) as server:
        url = (f"ws://127.0.0.1:{server.port}/openai/realtime?api-version=2025-04-01-preview"
               "&deployment=gpt-4o-mini-realtime-preview")
        target = Target(name="azure-preview", url=url, dialect=Dialect.BETA)
        store = RunStore(tmp_path, "run", {})
        await run_sessions(RunPlan(sc, [target], 2), _plans(sc), store)
    turns, errors = store.finalize("complete")
    assert len(errors) == 0 and (turns["status"] == "ok").all()
    assert (turns["ttfa_ms"] - 300).abs().max() < 5


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
