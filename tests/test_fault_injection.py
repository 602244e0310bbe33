"""Injected vs recorded: what the simulator says it injected is what rtbench recorded.

One bounded run with one fault kind per session, in memory on the mock clock (every kind,
latencies exact) and over real loopback sockets (the kinds that act on the socket), plus the
handshake refusals over loopback. The comparison goes per session id (the simulator's
``injected_by_session`` against the errors table), so it does not depend on which client
session got which server session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import trio
import trio.testing

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.protocol import Dialect, TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, FaultPlan, Profile, SimServer
from rtbench.sim.faults import rule_from_flag

from conftest import memory_sim, running_sim

#: Per fault kind, the (kind, code) error rows rtbench must record for the faulted session.
EXPECTED: dict[str, Counter[tuple[str, str]]] = {
    "server_error_after_created": Counter({("error_event", "server_error"): 1}),
    "early_expiry": Counter({("error_event", "session_expired"): 1, ("close", "1001"): 1}),
    "response_failed_server_error": Counter({("response_failed", "server_error"): 1}),
    "response_failed_rate_limit": Counter({("response_failed", "rate_limit_exceeded"): 1}),
    "response_failed_insufficient_quota": Counter({("response_failed", "insufficient_quota"): 1}),
    "response_failed_unavailable": Counter(
        {("response_failed", "inference_service_unavailable_error"): 1}),
    "tcp_drop": Counter({("close", "1006"): 1}),
    "stall": Counter({("timeout", "turn_timeout"): 1}),
    "malformed_json": Counter({("protocol", "bad_json"): 1}),
    "slow_drip": Counter(),
}
#: and the phase each lands in (where it is deterministic)
PHASE = {"server_error_after_created": "session", "tcp_drop": "turn", "stall": "turn",
         "malformed_json": "turn", "response_failed_server_error": "turn"}


def _plans(sc: Scenario) -> list:
    return [plan_chunks(load_utterance(sc.audio_dir / f"{n}.wav"), sc.chunk_ms)
            for n in sc.utterances]


#: The faults whose effect is on the socket itself (a dropped TCP connection, a raw frame, a
#: close frame): also checked over real loopback sockets.
ON_THE_WIRE = ("early_expiry", "tcp_drop", "malformed_json")


def _faulted_run(scenario: Scenario, kinds: list[str], expiry_s: float
                 ) -> tuple[Scenario, FaultPlan, Profile]:
    """The scenario, plan and profile of a run; an early expiry falls inside the first turn."""
    rules = [rule_from_flag(f"{kind}=sessions:{i + 1}") for i, kind in enumerate(kinds)]
    rules = [replace(r, params={"after_s": expiry_s}) if r.kind == "early_expiry" else r
             for r in rules]
    sc = replace(scenario, utterances=("en_timer", "en_weather"), turns_per_session=2,
                 trailing_silence_ms=300, think_time_ms=50, turn_timeout_s=5.0,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    profile = Profile(first_audio=Dist(200.0), response_audio_ms=400, realtime_factor=4.0)
    return sc, FaultPlan(tuple(rules)), profile


def _check_recorded_as_injected(server: SimServer, turns: pd.DataFrame, errors: pd.DataFrame,
                                kinds: list[str], clean: int) -> None:
    assert server.injected == Counter(kinds)  # each kind exactly once
    by_session = server.stats.by_session
    recorded: dict[str, Counter[tuple[str, str]]] = {}
    phases: dict[str, set[str]] = {}
    for row in errors.itertuples():
        recorded.setdefault(str(row.session_id), Counter())[(row.kind, row.code)] += 1
        phases.setdefault(str(row.session_id), set()).add(row.phase)
    for sid in set(turns["session_id"]) | set(recorded):
        injected = by_session.get(sid, Counter())
        expected: Counter[tuple[str, str]] = sum((EXPECTED[k] for k in injected), Counter())
        assert recorded.get(sid, Counter()) == expected, (sid, dict(injected))
        for kind in injected:
            if kind in PHASE:
                assert phases[sid] == {PHASE[kind]}, (kind, phases[sid])
    ok = turns[turns["status"] == "ok"]
    assert ok["ttfa_ms"].notna().all()
    assert len(ok) >= 2 * clean
    [drop_sid] = [sid for sid, kinds in by_session.items() if "tcp_drop" in kinds]
    assert list(turns[turns["session_id"] == drop_sid]["error_code"]) == ["close_1006"]
    [expired_sid] = [sid for sid, kinds in by_session.items() if "early_expiry" in kinds]
    assert len(turns[turns["session_id"] == expired_sid]) == 1  # no turn after the close


async def test_every_injected_fault_is_recorded_as_such(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    # every kind, in memory on the mock clock (the simulator's whole path, no socket)
    kinds = list(EXPECTED)
    clean = 2
    sc, faults, profile = _faulted_run(scenario, kinds, expiry_s=1.5)
    async with memory_sim(profile, faults=faults) as (server, connect):
        target = Target(name="sim", url="ws://sim.invalid/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(30):
            await run_sessions(RunPlan(sc, [target], len(kinds) + clean), _plans(sc), store,
                               connect=connect)
    turns, errors = store.finalize("complete")
    _check_recorded_as_injected(server, turns, errors, kinds, clean)
    ok = turns[turns["status"] == "ok"]
    assert len(ok) >= 2 * clean + 6  # clean sessions and the turns around the faults
    assert ok["ttfa_ms"].tolist() == pytest.approx([200.0] * len(ok), abs=1e-3)
    stalled = turns[turns["error_code"] == "turn_timeout"]
    assert len(stalled) == 1 and stalled["ttfa_ms"].isna().all()  # censored, not a latency
    by_session = server.stats.by_session
    [drip_sid] = [sid for sid, kinds in by_session.items() if "slow_drip" in kinds]
    drip = turns[(turns["session_id"] == drip_sid) & (turns["turn_idx"] == 0)]
    # 4 deltas of 100 ms generated at a quarter of real time, 400 ms each: response.done
    # 1.6 s after the first delta, exactly
    assert float((drip["response_done_ms"] - drip["ttfa_ms"]).iloc[0]) == pytest.approx(
        1600.0, abs=1e-3)


@pytest.mark.integration
async def test_faults_on_the_wire_are_recorded_over_real_sockets(
        scenario: Scenario, short_audio: Path, tmp_path: Path) -> None:
    kinds = list(ON_THE_WIRE)
    clean = 1
    # 0.7 s utterances: the first turn's audio ends after 1.1 s at the earliest
    sc, faults, profile = _faulted_run(replace(scenario, audio_dir=short_audio), kinds,
                                       expiry_s=1.0)
    async with running_sim(profile, faults=faults) as server:
        target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m")
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(30):
            await run_sessions(RunPlan(sc, [target], len(kinds) + clean), _plans(sc), store)
    turns, errors = store.finalize("complete")
    _check_recorded_as_injected(server, turns, errors, kinds, clean)


@pytest.mark.parametrize(("path", "dialect", "codes"), [
    ("/v1/realtime?model=gpt-realtime", Dialect.GA,
     {400: "invalid_value", 401: "invalid_api_key", 403: "model_not_found",
      404: "model_not_found", 429: "rate_limit_exceeded"}),
    ("/openai/realtime?api-version=2025-04-01-preview&deployment=d", Dialect.BETA,
     {400: "OpperationNotSupported", 401: "401", 403: "PermissionDenied",
      404: "DeploymentNotFound", 429: "429"}),
])
async def test_handshake_refusals_are_recorded_with_the_services_codes(
        scenario: Scenario, tmp_path: Path, path: str, dialect: Dialect,
        codes: dict[int, str]) -> None:
    statuses = sorted(codes)
    rules = tuple(rule_from_flag(f"handshake_{s}=sessions:{i + 1}")
                  for i, s in enumerate(statuses))
    sc = replace(scenario, turns_per_session=1, connect_timeout_s=5.0)
    async with running_sim(Profile(), faults=FaultPlan(rules)) as server:
        target = Target(name="sim", url=f"ws://127.0.0.1:{server.port}{path}", dialect=dialect)
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(20):
            # one session at a time, so connection ordinals follow the session order
            for i in range(len(statuses)):
                await run_sessions(RunPlan(replace(sc, turns_per_session=1), [target], 1),
                                   _plans(sc)[i:i + 1], store)
    _, errors = store.finalize("complete")
    assert server.injected == Counter(f"handshake_{s}" for s in statuses)
    assert list(errors["code"]) == [codes[s] for s in statuses]
    assert (errors["phase"] == "connect").all() and (errors["kind"] == "http_status").all()
    assert server.stats.counters["refused_429"] == 1
