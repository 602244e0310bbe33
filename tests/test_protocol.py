"""Sans-IO protocol layer: codec, dialect tables, session shapes, connection roles."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from rtbench.protocol import (
    Connection,
    Dialect,
    Event,
    EventType,
    ProtocolViolation,
    Role,
    SessionConfig,
    SessionUpdateRejected,
    TurnDetection,
    decode,
    encode,
    session_from_wire,
    session_to_wire,
)
from rtbench.protocol.dialect import BETA_TO_GA


@pytest.mark.parametrize(("beta", "ga"), sorted(BETA_TO_GA.items()))
def test_beta_names_decode_to_canonical_and_back(beta: str, ga: str) -> None:
    text = orjson.dumps({"type": beta, "event_id": "event_1", "delta": "x"}).decode()
    event = decode(text, Dialect.BETA)
    assert event.type == ga
    assert event.data == {"event_id": "event_1", "delta": "x"}
    assert orjson.loads(encode(event, Dialect.BETA) or "")["type"] == beta


def test_ga_names_pass_through_unchanged() -> None:
    event = decode('{"type":"response.output_audio.delta","delta":"AAA="}', Dialect.GA)
    assert event.type == EventType.AUDIO_DELTA
    assert decode('{"type":"response.audio.delta"}', Dialect.GA).type == "response.audio.delta"


def test_unknown_event_types_are_kept_with_all_fields() -> None:
    event = decode('{"type":"response.brand_new","a":1,"b":{"c":[2]}}', Dialect.GA)
    assert event.type == "response.brand_new"
    assert not event.known
    assert event.data == {"a": 1, "b": {"c": [2]}}
    assert orjson.loads(encode(event, Dialect.GA) or "") == {"type": "response.brand_new", "a": 1,
                                                            "b": {"c": [2]}}


def test_item_done_does_not_exist_in_beta_and_conversation_created_not_in_ga() -> None:
    assert encode(Event(EventType.ITEM_DONE, {}), Dialect.BETA) is None
    assert encode(Event(EventType.CONVERSATION_CREATED, {}), Dialect.GA) is None
    assert encode(Event(EventType.ITEM_ADDED, {}), Dialect.BETA) == (
        '{"type":"conversation.item.created"}')


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("{not json", "bad_json"),
        ("[1,2]", "not_an_object"),
        ('{"type": 5}', "missing_type"),
        ('{"no_type": true}', "missing_type"),
        (b"\x00\x01", "binary_frame"),
        ('"just a string"', "not_an_object"),
    ],
)
def test_bad_frames_raise_protocol_violation(frame: str | bytes, kind: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        decode(frame, Dialect.GA)
    assert info.value.kind == kind


@pytest.mark.toy_server_events
def test_connection_roles_check_direction_and_stamp_event_ids() -> None:
    client = Connection(Role.CLIENT, Dialect.GA)
    server = Connection(Role.SERVER, Dialect.GA)
    with pytest.raises(ValueError):
        client.send(Event(EventType.SESSION_CREATED, {}))
    with pytest.raises(ValueError):
        server.send(Event(EventType.INPUT_AUDIO_APPEND, {"audio": ""}))
    text = server.send(Event(EventType.SESSION_CREATED, {"session": {"id": "sess_abc"}}))
    assert text is not None and orjson.loads(text)["event_id"].startswith("event_")
    client.receive(text)
    assert client.session_id == "sess_abc"
    with pytest.raises(ProtocolViolation):
        server.receive(text)  # a client must not send server events


def test_connection_tracks_the_session_id() -> None:
    client = Connection(Role.CLIENT, Dialect.BETA)
    assert client.session_id is None
    client.receive('{"type":"session.created","event_id":"e","session":{"id":"sess_1"}}')
    assert client.session_id == "sess_1"


CFG = SessionConfig(voice="marin", turn_detection=TurnDetection(silence_duration_ms=700),
                    transcription_model="whisper-1")


def test_ga_session_shape_is_nested_and_round_trips() -> None:
    wire = session_to_wire(CFG, Dialect.GA)
    assert wire["type"] == "realtime"
    assert wire["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 700
    assert wire["audio"]["output"]["voice"] == "marin"
    assert wire["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session_from_wire(wire, Dialect.GA, SessionConfig()) == CFG


def test_beta_session_shape_is_flat_and_round_trips() -> None:
    wire = session_to_wire(CFG, Dialect.BETA)
    assert "type" not in wire and "audio" not in wire
    assert wire["modalities"] == ["audio", "text"]
    assert wire["turn_detection"]["silence_duration_ms"] == 700
    assert wire["input_audio_transcription"] == {"model": "whisper-1"}
    assert session_from_wire(wire, Dialect.BETA, SessionConfig()) == CFG


def test_optional_ga_fields_are_sent_only_when_set_and_round_trip() -> None:
    wire = session_to_wire(CFG, Dialect.GA)
    td = wire["audio"]["input"]["turn_detection"]
    # not set: not sent at all (a null is a value), in either generation (§3.4, §10.2, §10.4)
    assert "idle_timeout_ms" not in td and "reasoning" not in wire
    assert "idle_timeout_ms" not in session_to_wire(CFG, Dialect.BETA)["turn_detection"]
    full = replace(CFG, turn_detection=TurnDetection(idle_timeout_ms=6000),
                   reasoning_effort="minimal", noise_reduction="far_field",
                   noise_reduction_strength=0.4)
    wire = session_to_wire(full, Dialect.GA)
    assert wire["reasoning"] == {"effort": "minimal"}
    assert wire["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 6000
    assert wire["audio"]["input"]["noise_reduction"] == {"type": "far_field", "strength": 0.4}
    assert session_from_wire(wire, Dialect.GA, SessionConfig()) == full
    # semantic VAD has no idle timeout; a strength without noise reduction sends nothing
    semantic = TurnDetection(type="semantic_vad", idle_timeout_ms=6000).as_wire()
    assert "idle_timeout_ms" not in semantic
    assert session_to_wire(replace(CFG, noise_reduction_strength=0.4),
                           Dialect.GA)["audio"]["input"]["noise_reduction"] is None


def test_ga_payload_on_beta_path_is_rejected_with_unknown_parameter_session_type() -> None:
    with pytest.raises(SessionUpdateRejected) as info:
        session_from_wire(session_to_wire(CFG, Dialect.GA), Dialect.BETA, SessionConfig())
    assert (info.value.code, info.value.param) == ("unknown_parameter", "session.type")
    assert info.value.message == "Unknown parameter: 'session.type'."


def test_beta_payload_on_ga_path_is_rejected() -> None:
    with pytest.raises(SessionUpdateRejected) as info:
        session_from_wire({"type": "realtime", "voice": "alloy"}, Dialect.GA, SessionConfig())
    assert (info.value.code, info.value.param) == ("unknown_parameter", "session.voice")
    with pytest.raises(SessionUpdateRejected) as info:
        session_from_wire({"instructions": "hi"}, Dialect.GA, SessionConfig())
    assert (info.value.code, info.value.param) == ("missing_required_parameter", "session.type")


def test_partial_turn_detection_gets_documented_defaults() -> None:
    cfg = session_from_wire({"turn_detection": {"type": "server_vad"}}, Dialect.BETA,
                            SessionConfig())
    assert cfg.turn_detection == TurnDetection(silence_duration_ms=500)
    off = session_from_wire({"turn_detection": None}, Dialect.BETA, SessionConfig())
    assert off.turn_detection is None


def test_invalid_values_are_rejected() -> None:
    bad = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "magic_vad"}}}}
    with pytest.raises(SessionUpdateRejected) as info:
        session_from_wire(bad, Dialect.GA, SessionConfig())
    assert info.value.code == "invalid_value"
    with pytest.raises(SessionUpdateRejected):
        session_from_wire({"type": "transcription"}, Dialect.GA, SessionConfig())
