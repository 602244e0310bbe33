"""The generator notices when it is itself too slow, and says which figures suffer."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import trio

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.metrics import saturation
from rtbench.metrics.recorder import BUNCHED_CHUNKS, Recorder
from rtbench.protocol import TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, Profile

from conftest import running_sim


def test_assess_flags_lag_over_threshold() -> None:
    rec = Recorder()
    for _ in range(100):
        rec.record_ms("_generator", "loop_lag_ms", 0.5)
        rec.record_ms("t", "send_lateness_ms", 0.8)
    calm = saturation.assess(rec, ["t"], 5.0)
    assert not calm["saturated"] and calm["affected"] == []
    assert saturation.describe(calm) is None
    assert calm["gc_passes"] == 0 and calm["gc_pause_max_ms"] == 0.0
    rec.record_ms("_generator", "gc_pause_ms", 120.0)  # one scheduled full collection
    assert saturation.assess(rec, ["t"], 5.0)["gc_pause_max_ms"] > 119
    for _ in range(5):
        rec.record_ms("_generator", "loop_lag_ms", 30.0)
    busy = saturation.assess(rec, ["t"], 5.0)
    assert busy["saturated"] and "ttfa_ms" in busy["affected"]
    assert abs(busy["loop_lag_p99_ms"] - 30.0) < 0.1
    assert "saturated" in (saturation.describe(busy) or "")


async def _hog(period_s: float, block_s: float) -> None:
    """Block the event loop the way an overloaded generator does."""
    while True:
        await trio.sleep(period_s)
        time.sleep(block_s)


async def test_a_blocked_loop_is_detected_and_bunching_counted(
    scenario: Scenario, tmp_path: Path
) -> None:
    sc = replace(scenario, turns_per_session=1, trailing_silence_ms=200, think_time_ms=0,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    plans = [plan_chunks(load_utterance(sc.audio_dir / "en_timer.wav"), sc.chunk_ms)]
    async with running_sim(Profile(first_audio=Dist(300.0), response_audio_ms=200)) as server:
        target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_hog, 0.05, 0.045)
            await run_sessions(RunPlan(sc, [target], 2), plans, store)
            nursery.cancel_scope.cancel()
    verdict = saturation.assess(store.recorder, ["sim"], 5.0)
    assert verdict["saturated"], verdict
    assert verdict["loop_lag_p99_ms"] > 20
    assert store.recorder.counters.get(BUNCHED_CHUNKS, 0) > 0


def test_the_warning_names_only_the_figures_over_the_threshold() -> None:
    verdict = {"saturated": True, "threshold_ms": 5.0, "loop_lag_p99_ms": 7.0,
               "send_lateness_p99_ms": 4.1, "bunched_chunks": 1, "affected": ["ttfa_ms"]}
    line = saturation.describe(verdict)
    assert line is not None
    assert "loop lag p99 7.0 ms over 5 ms; 1 chunk bunched" in line
    assert "send lateness" not in line
