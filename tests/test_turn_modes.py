"""Manual commit, semantic VAD and barge-in over loopback; turn modes are labelled apart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.protocol import TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, Profile

from conftest import running_sim


async def _run(sc: Scenario, profile: Profile, tmp_path: Path, sessions: int = 2
               ) -> tuple[pd.DataFrame, pd.DataFrame, RunStore]:
    plans = [plan_chunks(load_utterance(sc.audio_dir / f"{n}.wav"), sc.chunk_ms)
             for n in ("en_timer", "en_weather")]
    async with running_sim(profile) as server:
        target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        await run_sessions(RunPlan(sc, [target], sessions), plans, store)
    turns, errors = store.finalize("complete")
    return turns, errors, store


async def test_manual_mode_measures_ttfa_from_the_commit(scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, turns_per_session=2, trailing_silence_ms=100, think_time_ms=50,
                 session=replace(scenario.session, turn_detection=None))
    turns, errors, _ = await _run(sc, Profile(first_audio=Dist(350.0), response_audio_ms=300),
                                  tmp_path)
    assert len(errors) == 0, errors.to_dict("records")
    assert (turns["status"] == "ok").all() and len(turns) == 4
    assert set(turns["turn_mode"]) == {"manual"}
    assert turns["vad_ms"].isna().all()  # no server VAD in manual mode
    assert (turns["ttfa_ms"] - 350).abs().max() < 5


async def test_semantic_vad_turns_are_labelled(scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, turns_per_session=1, trailing_silence_ms=100, think_time_ms=0,
                 session=replace(scenario.session, turn_detection=TurnDetection(
                     type="semantic_vad", eagerness="high")))
    turns, errors, _ = await _run(sc, Profile(first_audio=Dist(800.0), response_audio_ms=200),
                                  tmp_path)
    assert len(errors) == 0 and (turns["status"] == "ok").all()
    assert set(turns["turn_mode"]) == {"semantic_vad"}
    assert (turns["ttfa_ms"] - 800).abs().max() < 5


async def test_barge_in_interrupts_truncates_and_measures(scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, turns_per_session=2, trailing_silence_ms=100, think_time_ms=0,
                 barge_in_after_ms=300,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    # long responses streamed at real time, so the user interrupts mid-response
    profile = Profile(first_audio=Dist(400.0), response_audio_ms=6000, delta_ms=100,
                      realtime_factor=1.0)
    turns, errors, store = await _run(sc, profile, tmp_path)
    assert len(errors) == 0, errors.to_dict("records")
    first = turns[turns["turn_idx"] == 0]
    second = turns[turns["turn_idx"] == 1]
    assert first["barge_in"].all() and (first["status"] == "ok").all()
    assert (first["response_status"] == "cancelled").all()
    assert (first["status_reason"] == "turn_detected").all()
    # speech starts 100 ms into the utterance; the server's VAD needs one 10 ms frame
    assert first["interrupt_ms"].between(0, 60).all(), first["interrupt_ms"]
    assert (first["residual_audio_ms"] <= 200).all()
    assert first["truncated"].all()
    played = first["truncate_audio_end_ms"]
    assert played.between(300 + 100, 300 + 100 + 80).all(), played  # barge delay + lead-in
    assert (first["ttfa_ms"] - 400).abs().max() < 5
    assert (~second["barge_in"]).all() and (second["status"] == "ok").all()
    assert (second["ttfa_ms"] - 400).abs().max() < 5
    assert store.recorder.series("sim", "interrupt_ms").histogram.get_total_count() == 2
