"""The simulator's sans-IO behaviour, driven with made-up time (no sockets)."""

from __future__ import annotations

import base64
from dataclasses import replace

import numpy as np
import pytest

from rtbench.protocol import Dialect, Event, EventType, SessionConfig, TurnDetection
from rtbench.protocol.audio import SAMPLES_PER_MS
from rtbench.sim import Dist, Profile

from simdrive import Driver, tone

PROFILE = Profile(first_audio=Dist(400.0), response_audio_ms=600, delta_ms=100,
                  realtime_factor=2.0)
CFG = SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200))


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * SAMPLES_PER_MS, dtype=np.int16)


def test_server_vad_turn_in_ga_order_with_injected_first_audio() -> None:
    d = Driver(Dialect.GA, PROFILE)
    d.configure(CFG)
    d.stream(silence(200))
    t_eos = d.stream(tone(1000))  # the last chunk holding speech arrives at t_eos
    d.stream(silence(1500))
    types = d.types()
    assert types[:2] == ["session.created", "session.updated"]
    turn = [t for t in types[2:] if not t.startswith("rate_limits")]
    assert turn[:9] == [
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
        "response.created", "response.output_item.added", "conversation.item.added",
        "response.content_part.added",
    ]
    assert turn[-1] == "response.done"
    t_first, _ = d.first("response.output_audio.delta")
    assert t_first == pytest.approx(t_eos + 0.400)
    t_stop, stopped = d.first("input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] == 200 + 1000 + 200
    assert t_stop == pytest.approx(t_eos + 0.200)
    _, started = d.first("input_audio_buffer.speech_started")
    assert started["audio_start_ms"] == 0  # 200 ms of lead-in minus 300 ms prefix padding
    _, done = d.first("response.done")
    assert done["response"]["status"] == "completed"  # type: ignore[index]
    assert done["response"]["usage"]["output_tokens"] > 0  # type: ignore[index]
    assert types.count("response.output_audio.delta") == 6


def test_beta_dialect_uses_beta_names_and_conversation_created() -> None:
    d = Driver(Dialect.BETA, PROFILE)
    d.configure(CFG)
    d.stream(tone(500))
    d.stream(silence(1500))
    types = d.types()
    assert types[1] == "conversation.created"
    assert "response.audio.delta" in types and "response.output_audio.delta" not in types
    assert "conversation.item.created" in types and "conversation.item.done" not in types


def test_speech_during_response_cancels_it_with_turn_detected() -> None:
    d = Driver(Dialect.GA, Profile(first_audio=Dist(300.0), response_audio_ms=5000))
    d.configure(CFG)
    d.stream(tone(500))
    d.stream(silence(600))   # response is now streaming
    d.stream(tone(300))      # barge-in
    _, done = d.first("response.done")
    assert done["response"]["status"] == "cancelled"  # type: ignore[index]
    assert done["response"]["status_details"] == {"type": "cancelled",  # type: ignore[index]
                                                  "reason": "turn_detected"}


def test_manual_commit_and_response_create_and_errors() -> None:
    d = Driver(Dialect.GA, PROFILE)
    d.configure(SessionConfig(turn_detection=None))
    d.send(Event(EventType.INPUT_AUDIO_COMMIT, {"event_id": "c1"}))
    _, err = d.first("error")
    assert err["error"]["code"] == "input_audio_buffer_commit_empty"  # type: ignore[index]
    assert err["error"]["event_id"] == "c1"  # type: ignore[index]
    d.stream(tone(400))
    d.send(Event(EventType.INPUT_AUDIO_COMMIT, {}))
    d.send(Event(EventType.RESPONSE_CREATE, {}))
    d.send(Event(EventType.RESPONSE_CREATE, {}))
    codes = [e["error"]["code"] for e in d.all_json() if e["type"] == "error"]  # type: ignore[index]
    assert codes[-1] == "conversation_already_has_active_response"
    d.advance(d.now + 3)
    assert "response.done" in d.types()
    d.send(Event(EventType.RESPONSE_CANCEL, {}))
    codes = [e["error"]["code"] for e in d.all_json() if e["type"] == "error"]  # type: ignore[index]
    assert codes[-1] == "response_cancel_not_active"


def test_session_expiry_sends_session_expired_then_closes_1001() -> None:
    d = Driver(Dialect.GA, Profile(session_max_s=2.0))
    d.advance(3.0)
    assert d.types()[-1] == "error"
    assert d.first("error")[1]["error"]["code"] == "session_expired"  # type: ignore[index]
    assert d.closed is not None and d.closed.code == 1001


def test_cross_dialect_session_update_is_rejected() -> None:
    d = Driver(Dialect.BETA, PROFILE)
    d.send(Event(EventType.SESSION_UPDATE, {"session": {"type": "realtime"}}))
    err = d.first("error")[1]["error"]
    assert err["code"] == "unknown_parameter" and err["param"] == "session.type"  # type: ignore[index]


PREAMBLE = Profile(first_audio=Dist(400.0), response_audio_ms=300, delta_ms=100,
                   realtime_factor=2.0, preamble_ms=200, silence_pad_ms=100)


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_a_preamble_item_completes_before_the_answer_item_starts(dialect: Dialect) -> None:
    d = Driver(dialect, PREAMBLE)
    d.configure(CFG)
    d.stream(tone(500))
    d.stream(silence(2500))
    sent = [e for e in d.all_json() if str(e["type"]).startswith("response.output_item")]
    items = [(e["type"], e["output_index"], e["item"]["status"]) for e in sent]  # type: ignore[index]
    assert items == [("response.output_item.added", 0, "in_progress"),
                     ("response.output_item.done", 0, "completed"),
                     ("response.output_item.added", 1, "in_progress"),
                     ("response.output_item.done", 1, "completed")]
    pre, ans = sent[0]["item"]["id"], sent[2]["item"]["id"]  # type: ignore[index]
    deltas = [e for e in d.all_json() if str(e["type"]).endswith("audio.delta")]
    # 100 ms pad + 200 ms preamble in 3 deltas (the first silent), then the answer's 3
    assert [e["item_id"] for e in deltas] == [pre] * 3 + [ans] * 3
    assert base64.b64decode(str(deltas[0]["delta"])) == b"\0" * 4800
    _, done = d.first("response.done")
    assert [i["id"] for i in done["response"]["output"]] == [pre, ans]  # type: ignore[index]


def test_a_response_cancelled_during_its_preamble_ends_the_preamble_only() -> None:
    d = Driver(Dialect.GA, replace(PREAMBLE, preamble_ms=3000))
    d.configure(CFG)
    d.stream(tone(500))
    d.stream(silence(700))   # the preamble is streaming
    d.stream(tone(300))      # barge-in
    _, done = d.first("response.done")
    response = done["response"]
    assert response["status"] == "cancelled"  # type: ignore[index]
    assert [i["status"] for i in response["output"]] == ["incomplete"]  # type: ignore[index]
    assert d.types().count("response.output_item.added") == 1
