"""rtbench probe: the ladder, the handshake checks, and where a failing set-up breaks.

Rules: the probe runs against the simulator in memory on the autojump mock clock (its 1.5 s
settle waits and real-time audio then cost no wall time), except one test marked
``integration`` that checks the plumbing over a real loopback socket (127.0.0.1, port 0).
"""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio.testing

from rtbench.client import transport
from rtbench.client.probe import SETTLE_S, RungResult, explain, ladder, run_probe
from rtbench.client.workload import ChunkPlan, load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.sim import Dist, FaultPlan, Profile, SimServer
from rtbench.sim.faults import rule_from_flag

from conftest import REPO, memory_sim, running_sim

FAST = Profile(first_audio=Dist(600.0), response_audio_ms=200, realtime_factor=4.0)
URL = "ws://sim.invalid/v1/realtime?model=m"  # dialled in memory


@functools.cache
def timer_plan(audio_dir: Path) -> ChunkPlan:
    return plan_chunks(load_utterance(audio_dir / "en_timer.wav"), 20)


@asynccontextmanager
async def probe_sim(monkeypatch: pytest.MonkeyPatch, profile: Profile, **kw: object
                    ) -> AsyncIterator[SimServer]:
    """An in-memory simulator that the probe's connections reach.

    The probe opens connections with ``transport.open_connection`` looked up when it connects
    (it takes no ``connect`` argument yet), so the test points that name at the memory pair.
    """
    async with memory_sim(profile, **kw) as (server, connect):
        monkeypatch.setattr(transport, "open_connection", connect)
        yield server


def test_ladder_adds_one_feature_per_rung(scenario: Scenario) -> None:
    rungs = ladder(scenario.session)
    assert [r.name for r in rungs] == ["connect", "text", "audio_out", "server_vad",
                                       "transcription", "noise_reduction", "tools", "instructions"]
    text, audio_out, vad = (r.session for r in rungs[1:4])
    assert text is not None and text.output_modalities == ("text",) and text.turn_detection is None
    assert audio_out is not None and audio_out.output_modalities == ("audio",)
    assert vad is not None and vad.turn_detection is not None and rungs[3].audio
    assert rungs[4].session is not None and rungs[4].session.transcription_model
    assert rungs[6].session is not None and rungs[6].session.tools


async def test_a_healthy_target_passes_every_rung(
        autojump_clock: trio.testing.MockClock, scenario: Scenario,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with probe_sim(monkeypatch, FAST):
        results = await run_probe(Target("sim", URL), ladder(scenario.session),
                                  timer_plan(scenario.audio_dir), 1, 0, 20.0)
    assert [r.passed for r in results] == [True] * 8
    assert "every rung passed" in explain(results)


@pytest.mark.integration
async def test_a_refused_handshake_stops_the_ladder_with_advice(scenario: Scenario) -> None:
    plan = timer_plan(scenario.audio_dir)
    async with running_sim(FAST, api_key="right") as server:  # over a real socket
        target = Target("sim", f"ws://127.0.0.1:{server.port}/v1/realtime?model=m",
                        headers=(("Authorization", "Bearer wrong"),))
        results = await run_probe(target, ladder(scenario.session), plan, 3, 2, 10.0)
    assert len(results) == 1 and not results[0].passed
    assert len(results[0].tries) == 1  # a refused handshake is not retried
    text = explain(results)
    assert "handshake fails: HTTP 401 invalid_api_key" in text and "refused" in text
    assert "wrong" not in text


async def test_ga_config_on_the_preview_path_fails_at_the_first_update(
        autojump_clock: trio.testing.MockClock, scenario: Scenario,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with probe_sim(monkeypatch, FAST):
        # GA-shaped session.update sent to the Azure preview (beta) path
        url = "ws://sim.invalid/openai/realtime?api-version=2025-04-01-preview&deployment=d"
        results = await run_probe(Target("azure", url), ladder(replace(scenario.session)),
                                  timer_plan(scenario.audio_dir), 2, 0, 10.0)
    assert [r.rung.name for r in results] == ["connect", "text"]
    assert results[0].passed and not results[1].passed
    assert results[1].codes() == {"update:unknown_parameter": 2}
    assert len(results[1].session_ids()) == 2
    assert "'text'" in explain(results) and "sess_" in explain(results)


@pytest.mark.parametrize(("fault", "rung", "code", "rate"), [
    ("server_error_on_transcription=1.0", "transcription", "server_error", 1.0),
    ("server_error_after_created=every:2", "connect", "server_error", 0.5),
])
async def test_the_ladder_breaks_where_the_fault_plan_breaks(
    autojump_clock: trio.testing.MockClock, scenario: Scenario, monkeypatch: pytest.MonkeyPatch,
    fault: str, rung: str, code: str, rate: float
) -> None:
    faults = FaultPlan((rule_from_flag(fault),))
    async with probe_sim(monkeypatch, FAST, faults=faults) as server:
        results = await run_probe(Target("sim", URL), ladder(scenario.session),
                                  timer_plan(scenario.audio_dir), 2, 0, 20.0)
        injected = dict(server.injected)
    failing = results[-1]
    assert failing.rung.name == rung and not failing.passed
    assert all(r.passed for r in results[:-1])
    assert set(c.split(":")[1] for c in failing.codes()) == {code}
    assert failing.failure_rate == rate
    assert len(failing.session_ids()) == round(2 * rate)
    assert all(s.startswith("sess_") for s in failing.session_ids())
    assert f"'{rung}'" in explain(results)
    assert injected == {fault.split("=")[0]: round(2 * rate)}


async def test_each_rung_is_reported_as_soon_as_it_is_done(
        autojump_clock: trio.testing.MockClock, scenario: Scenario,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``on_rung`` gets every rung, in order, when that rung ends (not all at the end): the
    connect rung is one session.created plus the 1.5 s settle wait, on the mock clock."""
    reported: list[tuple[str, float, int]] = []
    results: list[RungResult] = []

    def on_rung(result: RungResult) -> None:
        reported.append((result.rung.name, trio.current_time(), len(results)))

    async with probe_sim(monkeypatch, FAST):
        t0 = trio.current_time()
        results = await run_probe(Target("sim", URL), ladder(scenario.session),
                                  timer_plan(scenario.audio_dir), 1, 0, 20.0, on_rung=on_rung)
        t_end = trio.current_time()
    assert [name for name, _, _ in reported] == [r.rung.name for r in results]
    times = [t - t0 for _, t, _ in reported]
    assert SETTLE_S <= times[0] < SETTLE_S + 0.5
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[-1] == t_end - t0
    assert all(done == 0 for _, _, done in reported)   # each came before run_probe returned


@pytest.mark.integration
@pytest.mark.slow
def test_rtbench_probe_prints_each_rung_while_it_still_runs() -> None:
    """The command streams: the connect rung's line is readable while the next rung (stalled
    by the simulator: no response, so it waits out its 10 s bound) is still going."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtbench", "probe", "--attempts", "1", "--retries", "0",
         "--probe-timeout-s", "10s", "--sim-fault", "stall=1.0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        assert header.startswith("probe local/sim-realtime (ws://127.0.0.1:")
        assert "8 rungs, 1 fresh session each" in header
        connect = proc.stdout.readline()
        still_running = proc.poll() is None
        rest = proc.stdout.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert connect.split() == ["connect", "pass", "1", "try,", "fail/try", "0%,", "after",
                               "retries", "0%"]
    assert still_running, "the connect rung's line came only when the probe ended"
    lines = rest.splitlines()
    assert lines[0].split()[:2] == ["text", "FAIL"] and "timeout:probe_timeout x1" in lines[0]
    assert lines[1].startswith("'text' (text output, no VAD: one text item + response.create) "
                               "fails while 'connect' passes: timeout:probe_timeout x1")
    assert code == 4
