"""Timing logic asserted exactly: client sessions against the simulator in memory, mock clock.

Rules of this module (and of every timing test in this suite):

* no socket: sessions reach the simulator through ``conftest.memory_sim`` (the real client and
  server code over an in-memory stream, ``rtbench.ws.memory``), so nothing here listens;
  tests that need a real socket live elsewhere, bind 127.0.0.1 on port 0 and are marked
  ``integration``;
* time is ``trio.testing.MockClock(autojump_threshold=0)`` (the ``autojump_clock`` fixture):
  no time passes but what the simulator's profile injects, so every latency is asserted to the
  microsecond (``US``) of the injected value, and a test takes milliseconds of wall time;
* where the measured value is not the injected one, the comment derives it (chunk and VAD
  frame boundaries) and the test asserts the derived value, just as exactly;
* every run is bounded by ``trio.fail_after`` in virtual seconds, so a hang fails, not stalls.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
import trio
import trio.testing

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.loadmodel import LoadModel, backoff_s
from rtbench.client.workload import ChunkPlan, load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.protocol import Dialect, TurnDetection
from rtbench.results.store import RunStore, load_sessions
from rtbench.sim import Dist, FaultPlan, FaultRule, Profile
from rtbench.sim.server import SimServer

from conftest import memory_sim

#: One microsecond, in the milliseconds the records are kept in.
US = 1e-3
TARGET = Target(name="sim", url="ws://sim.invalid/v1/realtime?model=m")  # dialled in memory
_PLANS: dict[tuple[str, int], ChunkPlan] = {}


def plans(sc: Scenario, *names: str) -> list[ChunkPlan]:
    """Chunk plans of the named utterances, read once per module (not once per test)."""
    for name in names:
        if (name, sc.chunk_ms) not in _PLANS:
            _PLANS[name, sc.chunk_ms] = plan_chunks(load_utterance(sc.audio_dir / f"{name}.wav"),
                                                    sc.chunk_ms)
    return [_PLANS[name, sc.chunk_ms] for name in names]


def vad(sc: Scenario, silence_ms: int = 200) -> Scenario:
    return replace(sc, session=replace(sc.session, turn_detection=TurnDetection(
        silence_duration_ms=silence_ms)))


class Run(NamedTuple):
    turns: pd.DataFrame
    errors: pd.DataFrame
    sessions: pd.DataFrame
    server: SimServer
    store: RunStore


async def run(sc: Scenario, profile: Profile, tmp_path: Path, utterances: list[ChunkPlan],
              sessions: int = 1, model: LoadModel | None = None, faults: FaultPlan | None = None,
              target: Target = TARGET) -> Run:
    """Run ``sessions`` against an in-memory simulator; the turns, errors and sessions tables."""
    store = RunStore(tmp_path, "run", {})
    options = {} if faults is None else {"faults": faults}
    with trio.fail_after(600):  # virtual seconds
        async with memory_sim(profile, **options) as (server, connect):
            await run_sessions(RunPlan(sc, [target], sessions, model), utterances, store,
                               connect=connect)
    turns, errors = store.finalize("complete")
    return Run(turns, errors, load_sessions(store.dir), server, store)


def speech_end_frame(plan: ChunkPlan) -> int:
    """The utterance's last 10 ms VAD frame with speech (what the server's VAD sees last)."""
    return int(plan.utterance.speech_end_ms) // 10 - 1


async def test_ttfa_vad_and_connect_are_exactly_what_the_profile_injects(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=2, trailing_silence_ms=300, think_time_ms=50)
    profile = Profile(handshake=Dist(30.0), vad_delay=Dist(25.0), first_audio=Dist(450.0),
                      response_audio_ms=400, delta_ms=100, realtime_factor=4.0)
    turns, errors, sessions, _, store = await run(sc, profile, tmp_path,
                                                  plans(sc, "en_weather", "en_timer"), sessions=3)
    assert len(errors) == 0, errors.to_dict("records")
    assert len(turns) == 6 and (turns["status"] == "ok").all()
    assert turns["session_id"].str.startswith("sess_").all()
    assert (turns["output_tokens"] > 0).all()
    # TTFA: the simulator anchors first audio at the arrival of the chunk holding the end of
    # speech, which is the chunk rtbench stamps T_eos on; nothing else passes in between.
    assert turns["ttfa_ms"].tolist() == pytest.approx([450.0] * 6, abs=US)
    # VAD: the 200 ms window is a whole number of 20 ms chunks (10 frames of 10 ms = 10
    # chunks), so the stop is decided at the arrival of the chunk exactly 200 ms after the
    # end-of-speech chunk; speech_stopped then leaves vad_delay (25 ms) later.
    assert turns["vad_ms"].tolist() == pytest.approx([225.0] * 6, abs=US)
    # 4 deltas of 100 ms generated at 4× real time take 25 ms each; response.done follows
    # the generation of the last: 4 × 25 ms after first audio
    assert turns["response_done_ms"].tolist() == pytest.approx([450.0 + 100.0] * 6, abs=US)
    assert (turns["output_audio_ms"] == 400).all()
    hist = store.recorder.series("sim", "ttfa_ms").histogram
    assert hist.get_total_count() == 6
    assert hist.get_value_at_percentile(50) / 1000 == pytest.approx(450.0, rel=1e-3)  # HDR: 3 digits
    # the handshake takes exactly the injected 30 ms; session.created comes with the 101
    assert turns["connect_ms"].tolist() == pytest.approx([30.0] * 6, abs=US)
    assert turns["session_created_ms"].tolist() == pytest.approx([30.0] * 6, abs=US)
    assert sessions["connect_ms"].tolist() == pytest.approx([30.0] * 3, abs=US)
    # audio left exactly on its schedule: the pacer is never late on a mock clock
    assert (turns["send_lateness_max_ms"] == 0.0).all()


@pytest.mark.parametrize(("utterance", "window_ms", "expected_ms"), [
    ("en_weather", 210, 200.0),  # speech ends with frame 260 (even): 21 frames end in chunk +10
    ("en_timer", 210, 220.0),    # speech ends with frame 203 (odd): 21 frames end in chunk +11
    ("en_timer", 200, 200.0),    # an even number of frames is whole chunks whatever the parity
])
async def test_vad_delay_is_the_silence_window_rounded_to_the_chunk_it_completes_in(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path,
        utterance: str, window_ms: int, expected_ms: float) -> None:
    sc = replace(vad(scenario, window_ms), turns_per_session=1, trailing_silence_ms=500,
                 think_time_ms=0)
    [plan] = plans(sc, utterance)
    # Derivation: the VAD decides "stopped" on frame L + S (L: last speech frame, S: window
    # in 10 ms frames), which arrives in chunk (L + S) // 2; T_eos is the send of chunk L // 2.
    frames = window_ms // 10
    last = speech_end_frame(plan)
    assert ((last + frames) // 2 - last // 2) * sc.chunk_ms == expected_ms
    assert plan.eos_chunk == last // 2
    turns, errors, *_ = await run(sc, Profile(first_audio=Dist(400.0), response_audio_ms=100),
                                    tmp_path, [plan])
    assert len(errors) == 0 and (turns["status"] == "ok").all()
    assert turns["vad_ms"].tolist() == pytest.approx([expected_ms], abs=US)
    # the server reports the end of speech plus the window, on its own input timeline
    assert turns["audio_end_ms"].tolist() == [(last + 1) * 10 + window_ms]
    assert turns["ttfa_ms"].tolist() == pytest.approx([400.0], abs=US)


async def test_first_audio_never_precedes_the_vad_decision(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario, 500), turns_per_session=1, trailing_silence_ms=600,
                 think_time_ms=0)
    # 300 ms after the end of speech is before the 500 ms window closes: the first delta
    # follows the decision at once, so TTFA is the VAD delay, not the injected value
    turns, errors, *_ = await run(sc, Profile(first_audio=Dist(300.0), response_audio_ms=100),
                                    tmp_path, plans(sc, "en_weather"))
    assert len(errors) == 0
    assert turns["vad_ms"].tolist() == pytest.approx([500.0], abs=US)
    assert turns["ttfa_ms"].tolist() == pytest.approx([500.0], abs=US)


async def test_manual_mode_measures_ttfa_from_the_commit(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, turns_per_session=2, trailing_silence_ms=100, think_time_ms=50,
                 session=replace(scenario.session, turn_detection=None))
    turns, errors, *_ = await run(sc, Profile(first_audio=Dist(350.0), response_audio_ms=300),
                                    tmp_path, plans(sc, "en_timer", "en_weather"), sessions=2)
    assert len(errors) == 0, errors.to_dict("records")
    assert (turns["status"] == "ok").all() and len(turns) == 4
    assert set(turns["turn_mode"]) == {"manual"}
    assert turns["vad_ms"].isna().all()  # no server VAD in manual mode
    # the commit goes right after the last chunk; the server anchors at its arrival
    assert turns["ttfa_ms"].tolist() == pytest.approx([350.0] * 4, abs=US)


@pytest.mark.parametrize(("eagerness", "window_ms"), [("high", 300), ("low", 1200)])
async def test_semantic_vad_turns_are_labelled_and_use_the_eagerness_window(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path,
        eagerness: str, window_ms: int) -> None:
    sc = replace(scenario, turns_per_session=1, trailing_silence_ms=1300, think_time_ms=0,
                 session=replace(scenario.session, turn_detection=TurnDetection(
                     type="semantic_vad", eagerness=eagerness)))
    turns, errors, *_ = await run(sc, Profile(first_audio=Dist(1500.0), response_audio_ms=200),
                                    tmp_path, plans(sc, "en_timer", "en_weather"), sessions=2)
    assert len(errors) == 0 and (turns["status"] == "ok").all()
    assert set(turns["turn_mode"]) == {"semantic_vad"}
    # the simulator stands in for semantic VAD with an eagerness window (whole chunks here)
    assert turns["vad_ms"].tolist() == pytest.approx([float(window_ms)] * 2, abs=US)
    assert turns["ttfa_ms"].tolist() == pytest.approx([1500.0] * 2, abs=US)


async def test_barge_in_interrupts_truncates_and_measures(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    # 310 ms, not 300: the barge-in then starts between two chunk deadlines (no tie between
    # the turn loop and the pacer at one instant, whose order trio does not promise)
    sc = replace(vad(scenario), turns_per_session=2, trailing_silence_ms=100, think_time_ms=0,
                 barge_in_after_ms=310)
    # long responses streamed at real time, so the user interrupts mid-response
    profile = Profile(first_audio=Dist(400.0), response_audio_ms=6000, delta_ms=100,
                      realtime_factor=1.0)
    utterances = plans(sc, "en_timer", "en_weather")
    turns, errors, _, _, store = await run(sc, profile, tmp_path, utterances, sessions=2)
    assert len(errors) == 0, errors.to_dict("records")
    assert store.recorder.series("sim", "interrupt_ms").histogram.get_total_count() == 2
    first = turns[turns["turn_idx"] == 0]
    second = turns[turns["turn_idx"] == 1]
    assert first["barge_in"].all() and (first["status"] == "ok").all()
    assert (first["response_status"] == "cancelled").all()
    assert (first["status_reason"] == "turn_detected").all()
    assert first["truncated"].all()
    assert first["ttfa_ms"].tolist() == pytest.approx([400.0] * 2, abs=US)
    # The barging turn begins 310 ms after first audio, 10 ms before a chunk deadline
    # (first audio falls on the session's chunk grid: T_eos plus 400 ms); its chunk 0 leaves
    # 10 ms later, and its first speech chunk (speech_start_chunk) k chunks after that.
    for _, row in first.iterrows():
        nxt = utterances[(int(row["session_idx"]) + 1) % 2]
        heard_ms = 310 + 10 + nxt.speech_start_chunk * sc.chunk_ms
        # the server's VAD hears speech in that very chunk and cancels at once: the client
        # stops "playing" and truncates at what it played by then, to the millisecond
        # ... to the millisecond below: TurnTracker.playing truncates with int(), and the
        # float difference of the two virtual times, 0.42 s, is 419.99999999999994 ms. A whole
        # millisecond is lost whenever the true value is whole (found by this test; the
        # protocol layer owns the rounding).
        assert row["truncate_audio_end_ms"] == heard_ms - 1
        assert row["interrupt_ms"] == pytest.approx(0.0, abs=US)
        # deltas are 100 ms each at real time: the one in flight at the cancel is residual
        assert row["audio_stop_ms"] == pytest.approx(-(heard_ms % 100), abs=US)
        assert row["residual_audio_ms"] == 0
    assert (~second["barge_in"]).all() and (second["status"] == "ok").all()
    assert second["ttfa_ms"].tolist() == pytest.approx([400.0] * 2, abs=US)


async def test_a_stalled_response_times_out_exactly_at_the_turn_timeout(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=2, turn_timeout_s=4.0, trailing_silence_ms=300,
                 think_time_ms=0)
    faults = FaultPlan((FaultRule("stall", sessions=frozenset({1})),))
    turns, errors, _, server, _ = await run(sc, Profile(first_audio=Dist(300.0), response_audio_ms=100),
                                         tmp_path, plans(sc, "en_timer"), faults=faults)
    assert server.injected["stall"] == 1
    stalled = turns[turns["turn_idx"] == 0].iloc[0]
    assert stalled["status"] == "timeout" and pd.isna(stalled["ttfa_ms"])
    [timeout] = errors[errors["code"] == "turn_timeout"].to_dict("records")
    assert timeout["phase"] == "turn" and timeout["kind"] == "timeout"
    # the turn's clock starts when its audio starts; it gives up exactly turn_timeout_s later
    assert (timeout["t_s"] - stalled["t_start_s"]) * 1000.0 == pytest.approx(4000.0, abs=US)


async def test_retries_back_off_exactly_as_drawn_and_the_last_attempt_connects(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=1, trailing_silence_ms=300, think_time_ms=0)
    model = LoadModel(sessions=1, retries=3, backoff_s=0.5, backoff_max_s=8.0, seed=7)
    # connections 1 and 2 are refused with 429 (retryable) after the 30 ms handshake
    faults = FaultPlan((FaultRule("handshake_429", sessions=frozenset({1, 2})),))
    profile = Profile(handshake=Dist(30.0), first_audio=Dist(300.0), response_audio_ms=100)
    turns, errors, sessions, *_ = await run(sc, profile, tmp_path, plans(sc, "en_timer"),
                                           model=model, faults=faults)
    assert list(errors["code"]) == ["rate_limit_exceeded"] * 2, errors.to_dict("records")
    assert list(sessions["attempt"]) == [0, 1, 2]
    assert list(sessions["retried"]) == [True, True, False]
    assert list(sessions["status"]) == ["failed", "failed", "ok"]
    # the backoffs are the model's jittered draws, replayed from the same seed
    rng = random.Random(model.seed)
    start, expected = 0.0, []
    for attempt in range(3):
        expected.append(start)
        start += 0.030 + backoff_s(model, attempt + 1, rng)
    assert sessions["start_s"].tolist() == pytest.approx(expected, abs=1e-9)
    # a retry is intended when its backoff ends: no start lag
    assert sessions["start_lag_ms"].tolist() == pytest.approx([0.0] * 3, abs=US)
    assert (errors["t_s"] - sessions["start_s"][:2].to_numpy()).tolist() == pytest.approx(
        [0.030] * 2, abs=1e-9)
    assert turns["ttfa_ms"].tolist() == pytest.approx([300.0], abs=US)


async def test_open_arrivals_start_on_time_and_over_the_cap_are_dropped(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=1, trailing_silence_ms=300, think_time_ms=0)
    # each session lasts ~2.9 s (2 s of speech, VAD, TTFA, trailing silence): at 4 arrivals a
    # second and a cap of 6, arrivals 7 and 8 find six running and are dropped
    model = LoadModel(kind="open", sessions=6, rate_per_s=4, total_sessions=8)
    _, errors, sessions, *_ = await run(sc, Profile(first_audio=Dist(300.0), response_audio_ms=100),
                                       tmp_path, plans(sc, "en_timer"), model=model)
    assert len(errors) == 0
    sessions = sessions.sort_values("slot")
    assert sessions["intended_start_s"].tolist() == pytest.approx(
        [k * 0.25 for k in range(8)], abs=1e-9)
    assert list(sessions["status"]) == ["ok"] * 6 + ["dropped"] * 2
    started = sessions[sessions["status"] == "ok"]
    assert started["start_lag_ms"].tolist() == pytest.approx([0.0] * 6, abs=US)


async def test_beta_dialect_on_the_azure_preview_path(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=1, trailing_silence_ms=300, think_time_ms=0)
    target = Target(name="azure-preview", dialect=Dialect.BETA, url=(
        "ws://sim.invalid/openai/realtime?api-version=2025-04-01-preview"
        "&deployment=gpt-4o-mini-realtime-preview"))
    turns, errors, *_ = await run(sc, Profile(first_audio=Dist(300.0), response_audio_ms=200),
                                  tmp_path, plans(sc, "en_timer", "en_weather"), sessions=2,
                                  target=target)
    assert len(errors) == 0 and (turns["status"] == "ok").all() and len(turns) == 2
    assert turns["ttfa_ms"].tolist() == pytest.approx([300.0] * 2, abs=US)


async def test_silence_pad_and_preamble_are_measured_exactly(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=2, trailing_silence_ms=300, think_time_ms=50)
    profile = Profile(first_audio=Dist(450.0), silence_pad_ms=250, preamble_ms=400,
                      answer_delay=Dist(150.0), response_audio_ms=400, delta_ms=100,
                      realtime_factor=4.0)
    turns, errors, *_ = await run(sc, profile, tmp_path, plans(sc, "en_weather", "en_timer"),
                                  sessions=2)
    assert len(errors) == 0, errors.to_dict("records")
    assert len(turns) == 4 and (turns["status"] == "ok").all()
    # TTFB: the first delta, exactly the injected first audio.
    assert turns["ttfb_ms"].tolist() == pytest.approx([450.0] * 4, abs=US)
    # The preamble item carries 250 + 400 = 650 ms in 7 deltas (6 × 100 + 50), one each 25 ms
    # (100 ms at 4× real time): faster than real time, so the player plays them back to back
    # from the first byte. Deltas 0 and 1 are silent; delta 2 plays from ttfb + 200 ms and its
    # first 50 ms (5 whole 10 ms detector windows) are silent: heard at ttfb + 250 exactly.
    assert turns["ttfa_ms"].tolist() == pytest.approx([450.0 + 250.0] * 4, abs=US)
    assert turns["silence_pad_ms"].tolist() == pytest.approx([250.0] * 4, abs=US)
    # The answer's first delta: after the preamble has played (ttfb + 650) plus the answer's
    # own 150 ms; the player is idle by then, so it is heard on arrival (it has no pad):
    # ttfa + 400 (the preamble's speech) + 150.
    assert turns["ttfa_answer_ms"].tolist() == pytest.approx([700.0 + 400.0 + 150.0] * 4, abs=US)
    assert (turns["output_items"] == 2).all() and (turns["preamble_audio_ms"] == 650.0).all()
    assert (turns["output_audio_ms"] == 650.0 + 400.0).all()
    # 4 answer deltas of 100 ms at 25 ms each: response.done 100 ms after the answer's first
    assert turns["response_done_ms"].tolist() == pytest.approx([1250.0 + 100.0] * 4, abs=US)


async def test_without_a_preamble_the_answer_is_the_first_audible_sample(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=1, trailing_silence_ms=300, think_time_ms=0)
    # 130 ms of pad: delta 1 (played from ttfb + 100) starts with 30 ms (3 windows) of silence
    profile = Profile(first_audio=Dist(400.0), silence_pad_ms=130, response_audio_ms=300,
                      delta_ms=100, realtime_factor=4.0)
    turns, errors, *_ = await run(sc, profile, tmp_path, plans(sc, "en_weather"))
    assert len(errors) == 0 and (turns["status"] == "ok").all()
    assert turns["ttfb_ms"].tolist() == pytest.approx([400.0], abs=US)
    assert turns["ttfa_ms"].tolist() == pytest.approx([530.0], abs=US)
    assert turns["ttfa_answer_ms"].tolist() == turns["ttfa_ms"].tolist()
    assert turns[["output_items", "preamble_audio_ms", "output_audio_ms"]].values.tolist() == [
        [1, 0.0, 430.0]]


#: en_timer_pause: "Set a timer for ... ten minutes please." Speech frames (10 ms) end with
#: frame 97 (980 ms) and resume with frame 162 (1620 ms): a pause of 64 silent frames; the
#: utterance's last speech frame is 266, so T_eos is the send of chunk 133.
PAUSE_LAST_FRAME, PAUSE_RESUME_FRAME, PAUSE_EOS_CHUNK = 97, 162, 133


@pytest.mark.parametrize(("window_ms", "premature", "vad_ms", "ttfb_ms"), [
    # 30 silent frames end the turn at frame 127, in chunk 63: 70 chunks before T_eos
    (300, True, (63 - PAUSE_EOS_CHUNK) * 20.0, 700.0),
    # 64 silent frames are not 80: one turn, its stop 40 chunks after T_eos; first audio
    # (700 ms) never precedes that decision
    (800, False, 800.0, 800.0),
])
async def test_a_pause_longer_than_the_vad_window_is_answered_too_early(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path,
        window_ms: int, premature: bool, vad_ms: float, ttfb_ms: float) -> None:
    sc = replace(vad(scenario, window_ms), turns_per_session=2, trailing_silence_ms=300,
                 think_time_ms=50)
    pause, timer = plans(sc, "en_timer_pause", "en_timer")
    assert (pause.eos_chunk, speech_end_frame(pause)) == (PAUSE_EOS_CHUNK, 266)
    # With a 300 ms window the first response is created in the pause; its first audio would
    # come 700 ms after the arrival of chunk 48 (frame 97), i.e. at chunk 83, but the speech
    # resuming in chunk 81 cancels it (turn_detected) and the server answers again after the
    # whole utterance: the turn takes that answer, measured from T_eos like any other.
    profile = Profile(first_audio=Dist(700.0), response_audio_ms=300)
    turns, errors, *_ = await run(sc, profile, tmp_path, [pause, timer])
    assert len(errors) == 0, errors.to_dict("records")
    assert (turns["status"] == "ok").all() and len(turns) == 2
    first, second = turns.iloc[0], turns.iloc[1]
    assert (first["utterance"], bool(first["premature"])) == ("en_timer_pause", premature)
    assert first["vad_ms"] == pytest.approx(vad_ms, abs=US)
    assert first["ttfb_ms"] == pytest.approx(ttfb_ms, abs=US)
    assert (first["response_status"], first["output_audio_ms"]) == ("completed", 300.0)
    # the next turn is not disturbed by the first response of the split utterance
    assert (second["utterance"], bool(second["premature"])) == ("en_timer", False)
    assert second["ttfb_ms"] == pytest.approx(max(700.0, window_ms), abs=US)


async def test_an_early_answer_over_before_the_user_finished_is_not_the_turns(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario, 300), turns_per_session=2, trailing_silence_ms=300,
                 think_time_ms=50)
    # The early response (created in chunk 63) has its first audio 400 ms after chunk 48's
    # arrival (chunk 68) and its one 100 ms delta takes 50 ms: it is over before the speech
    # resumes in chunk 81 (no cancel). The server answers the rest again; that answer is the
    # turn's: 400 ms after T_eos.
    profile = Profile(first_audio=Dist(400.0), response_audio_ms=100)
    turns, errors, *_ = await run(sc, profile, tmp_path, plans(sc, "en_timer_pause", "en_timer"))
    assert len(errors) == 0, errors.to_dict("records")
    first, second = turns.iloc[0], turns.iloc[1]
    assert (first["status"], bool(first["premature"])) == ("ok", True)
    assert first["ttfb_ms"] == pytest.approx(400.0, abs=US)
    assert first["vad_ms"] == pytest.approx((63 - PAUSE_EOS_CHUNK) * 20.0, abs=US)
    assert first["output_audio_ms"] == 100.0  # the answer's audio, not the early response's
    assert (second["status"], bool(second["premature"])) == ("ok", False)
    assert second["ttfb_ms"] == pytest.approx(400.0, abs=US)
    # the next utterance began once the paused one had been sent: its turn is measured
    assert second["t_start_s"] > first["t_start_s"] + len(plans(sc, "en_timer_pause")[0].wire) * 0.02


async def test_an_idle_timeout_response_is_noted_and_no_turn_takes_it(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    # idle_timeout_ms runs from response.done plus the response's playback (400 ms): 900 ms
    # after turn 0's response.done. Turn 1 starts 850 ms after it (think time) and its speech
    # reaches the server ~120 ms later: the timeout fires inside turn 1, before its speech,
    # and that speech then cancels the idle response.
    sc = replace(scenario, turns_per_session=2, trailing_silence_ms=300, think_time_ms=850,
                 session=replace(scenario.session, turn_detection=TurnDetection(
                     silence_duration_ms=200, idle_timeout_ms=500)))
    profile = Profile(first_audio=Dist(300.0), response_audio_ms=400)
    turns, errors, *_ = await run(sc, profile, tmp_path, plans(sc, "en_timer", "en_weather"))
    [idle] = errors.to_dict("records")
    assert (idle["kind"], idle["code"], idle["severity"], idle["phase"], idle["turn_idx"]) == (
        "idle_timeout", "timeout_triggered", "benign", "turn", 1)
    assert "(500 ms of input without speech)" in idle["message"]
    first, second = turns.iloc[0], turns.iloc[1]
    t_done = first["t_start_s"] + (first["speech_end_ms"] + first["response_done_ms"]) / 1000.0
    assert idle["t_s"] - second["t_start_s"] == pytest.approx(t_done + 0.9 - second["t_start_s"],
                                                              abs=1e-9)
    assert 0 < idle["t_s"] - second["t_start_s"] < 0.1  # inside turn 1, before its speech
    # turn 1 is measured on its own response: not premature, the injected first audio
    assert (turns["status"] == "ok").all() and not turns["premature"].any()
    assert turns["ttfb_ms"].tolist() == pytest.approx([300.0, 300.0], abs=US)


async def test_reasoning_effort_is_sent_recorded_and_delays_first_audio(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(vad(scenario), turns_per_session=1, trailing_silence_ms=300, think_time_ms=0)
    sc = replace(sc, session=replace(sc.session, reasoning_effort="low"))
    profile = Profile(first_audio=Dist(400.0), response_audio_ms=200)  # default effort delays
    utterances = plans(sc, "en_timer")
    low = await run(sc, profile, tmp_path / "low", utterances)
    # a target's own effort wins over the scenario's
    high = await run(sc, profile, tmp_path / "high", utterances,
                     target=replace(TARGET, reasoning_effort="high"))
    for result, effort, extra in ((low, "low", 200.0), (high, "high", 1000.0)):
        assert len(result.errors) == 0
        assert result.turns["effort"].tolist() == [effort]
        assert result.turns["ttfb_ms"].tolist() == pytest.approx([400.0 + extra], abs=US)
