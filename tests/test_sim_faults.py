"""Fault injection in the sans-IO behaviour (made-up time), and the fixture it must reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from rtbench.protocol import Dialect, SessionConfig, TurnDetection
from rtbench.protocol.audio import SAMPLES_PER_MS
from rtbench.sim import Close, Dist, Profile
from rtbench.sim.faults import FaultRule

from referee import validate
from simdrive import Driver, tone

FIXTURE = Path("/work/shared/fixtures/azure-preview-server-error-after-session-created.jsonl")
PROFILE = Profile(first_audio=Dist(400.0), response_audio_ms=600, delta_ms=100,
                  realtime_factor=2.0)
CFG = SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200))


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * SAMPLES_PER_MS, dtype=np.int16)


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (numbers are one type: 1 and 1.0 are the same shape)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def fixture_events() -> list[dict[str, Any]]:
    if not FIXTURE.exists():
        pytest.skip(f"shared fixture not available: {FIXTURE}")
    return [orjson.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def test_fixture_events_validate_with_the_sdk_beta_models() -> None:
    for obj in fixture_events():
        validate(Dialect.BETA, obj)


def test_server_error_after_created_reproduces_the_azure_capture_exactly() -> None:
    created_fx, error_fx = fixture_events()
    d = Driver(Dialect.BETA, PROFILE, model="gpt-4o-mini-realtime-preview-2024-12-17",
               faults=[FaultRule("server_error_after_created", sessions=frozenset({1}))],
               azure=True)
    created, error = (orjson.loads(t) for _, t in d.sent[:2])
    assert shape(created) == shape(created_fx)
    assert shape(error) == shape(error_fx)
    sid, sid_fx = created["session"]["id"], created_fx["session"]["id"]
    assert error["error"]["message"].replace(sid, "SID") == \
        error_fx["error"]["message"].replace(sid_fx, "SID")
    assert (error["error"]["type"], error["error"]["code"]) == ("server_error", None)
    assert d.sent[0][0] == d.sent[1][0]  # right after session.created
    assert d.injected == ["server_error_after_created"]


def _turn(d: Driver) -> float:
    d.configure(CFG)
    t_eos = d.stream(tone(600))
    d.stream(silence(1500))
    return t_eos


@pytest.mark.parametrize(("kind", "code", "etype"), [
    ("response_failed_server_error", None, "server_error"),
    ("response_failed_rate_limit", "rate_limit_exceeded", "tokens"),
    ("response_failed_insufficient_quota", "insufficient_quota", "insufficient_quota"),
    ("response_failed_unavailable", "inference_service_unavailable_error",
     "service_unavailable_error"),
])
def test_response_failures_end_in_response_done_failed(kind: str, code: str | None,
                                                       etype: str) -> None:
    d = Driver(Dialect.GA, PROFILE, response_fault=lambda n: FaultRule(kind, every=1))
    t_eos = _turn(d)
    t_done, done = d.first("response.done")
    response: Any = done["response"]
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["code"] == code
    assert response["status_details"]["error"]["type"] == etype
    assert t_done == pytest.approx(t_eos + 0.400)  # where the first audio would have been
    assert "response.output_audio.delta" not in d.types()
    assert d.injected == [kind]


def test_tcp_drop_closes_without_a_frame_after_the_given_deltas() -> None:
    d = Driver(Dialect.GA, PROFILE,
               response_fault=lambda n: FaultRule("tcp_drop", every=1, params={"after_deltas": 2}))
    _turn(d)
    assert d.closed == Close(None, "tcp_drop")
    assert d.types().count("response.output_audio.delta") == 2
    assert "response.done" not in d.types()
    assert d.injected == ["tcp_drop"]


def test_stall_sends_no_response_at_all_and_the_next_turn_works() -> None:
    d = Driver(Dialect.GA, PROFILE,
               response_fault=lambda n: FaultRule("stall", every=1) if n == 1 else None)
    _turn(d)
    assert "input_audio_buffer.committed" in d.types()
    assert not any(t.startswith("response.") for t in d.types())
    d.stream(tone(600))
    d.stream(silence(1500))
    assert d.types().count("response.done") == 1
    assert d.injected == ["stall"]


def test_malformed_json_adds_one_truncated_frame_and_the_response_completes() -> None:
    d = Driver(Dialect.GA, PROFILE, response_fault=lambda n: FaultRule("malformed_json", every=1))
    _turn(d)
    assert len(d.raw) == 1
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(d.raw[0])
    _, done = d.first("response.done")
    assert done["response"]["status"] == "completed"  # type: ignore[index]


def test_slow_drip_paces_deltas_below_real_time() -> None:
    d = Driver(Dialect.GA, PROFILE, response_fault=lambda n: FaultRule(
        "slow_drip", every=1, params={"realtime_factor": 0.5}))
    t_eos = _turn(d)
    d.advance(d.now + 5)
    times = [t for t, text in d.sent if '"response.output_audio.delta"' in text]
    assert times[0] == pytest.approx(t_eos + 0.400)
    assert np.diff(times) == pytest.approx([0.200] * 5)  # 100 ms of audio every 200 ms
    _, done = d.first("response.done")
    assert done["response"]["status"] == "completed"  # type: ignore[index]


def test_early_expiry_expires_the_session_after_the_given_seconds() -> None:
    d = Driver(Dialect.GA, PROFILE,
               faults=[FaultRule("early_expiry", every=1, params={"after_s": 1.5})])
    d.advance(2.0)
    t_err, err = d.first("error")
    assert err["error"]["code"] == "session_expired"  # type: ignore[index]
    assert t_err == pytest.approx(1.5)
    assert d.closed is not None and d.closed.code == 1001
    assert d.injected == ["early_expiry"]


def test_beta_shape_rejection_sends_the_error_then_closes_4000() -> None:
    d = Driver(Dialect.BETA, PROFILE, start=False)
    d.sim.reject_beta_shape(0.0)
    d.advance(0.0)
    _, err = d.first("error")
    assert err["error"]["code"] == "beta_api_shape_disabled"  # type: ignore[index]
    assert d.closed == Close(4000, "invalid_request_error.beta_api_shape_disabled")

