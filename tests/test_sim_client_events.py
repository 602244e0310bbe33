"""Every client event of the GA and beta unions is answered as the service answers it
(protocol reference §10.4): response.create's per-response fields, item retrieve/delete,
response.cancel by id, output_audio_buffer.clear, and a session.update naming another model.

Driven sans-IO on made-up time; the referee (conftest) validates every event sent here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rtbench.protocol import Dialect, Event, EventType, SessionConfig, TurnDetection
from rtbench.protocol.audio import SAMPLES_PER_MS
from rtbench.sim import Dist, Profile
from rtbench.sim.behaviour import MAX_ITEMS

from simdrive import Driver, tone

PROFILE = Profile(first_audio=Dist(300.0), response_audio_ms=600, delta_ms=100,
                  realtime_factor=2.0, session_max_s=600.0)
BOTH = pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])


def _of(d: Driver, wire_type: str) -> list[dict[str, Any]]:
    return [e for e in d.all_json() if e["type"] == wire_type]


def _vad_turn(d: Driver) -> None:
    d.configure(SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200),
                              transcription_model="gpt-transcribe"))
    d.stream(tone(600))
    d.stream(np.zeros(3000 * SAMPLES_PER_MS, dtype=np.int16))


def _manual(d: Driver, response: dict[str, Any] | None = None, **extra: Any) -> None:
    body: dict[str, Any] = {"event_id": "evt_client_1", **extra}
    if response is not None:
        body["response"] = response
    d.send(Event(EventType.RESPONSE_CREATE, body))


@BOTH
def test_response_metadata_is_echoed_in_created_and_done(dialect: Dialect) -> None:
    d = Driver(dialect, PROFILE)
    _manual(d, {"metadata": {"client_event_id": "lk-42"}})
    d.advance(d.now + 3)
    created, = _of(d, "response.created")
    done, = _of(d, "response.done")
    assert created["response"]["metadata"] == {"client_event_id": "lk-42"}
    assert done["response"]["metadata"] == {"client_event_id": "lk-42"}
    assert done["response"]["status"] == "completed"


def test_bad_metadata_is_an_error_and_starts_nothing() -> None:
    d = Driver(Dialect.GA, PROFILE)
    _manual(d, {"metadata": {str(i): "v" for i in range(17)}})
    _manual(d, {"metadata": {"n": 1}})
    errors = _of(d, "error")
    assert [(e["error"]["code"], e["error"]["param"], e["error"]["event_id"]) for e in errors] == [
        ("invalid_value", "response.metadata", "evt_client_1"),
        ("invalid_type", "response.metadata", "evt_client_1")]
    assert not _of(d, "response.created")


@pytest.mark.parametrize(("dialect", "override", "delta"), [
    (Dialect.GA, {"output_modalities": ["text"], "instructions": "Be brief."},
     "response.output_text.delta"),
    (Dialect.BETA, {"modalities": ["text"], "instructions": "Be brief."}, "response.text.delta"),
])
def test_modalities_override_applies_to_that_response_only(
        dialect: Dialect, override: dict[str, Any], delta: str) -> None:
    d = Driver(dialect, PROFILE)
    _manual(d, override)
    d.advance(d.now + 3)
    assert _of(d, delta) and not [t for t in d.types() if "audio.delta" in t]
    first = _of(d, "response.done")[0]["response"]
    assert first.get("output_modalities", first.get("modalities")) == ["text"]
    _manual(d)  # the session still speaks
    d.advance(d.now + 3)
    assert [t for t in d.types() if t.endswith("audio.delta")]


def test_a_field_of_the_other_generation_in_response_create_is_unknown() -> None:
    d = Driver(Dialect.BETA, PROFILE)
    _manual(d, {"output_modalities": ["text"]})
    err, = _of(d, "error")
    assert (err["error"]["code"], err["error"]["param"]) == (
        "unknown_parameter", "response.output_modalities")


def test_out_of_band_response_stays_out_of_the_conversation() -> None:
    d = Driver(Dialect.GA, PROFILE)
    _manual(d, {"conversation": "none", "metadata": {"topic": "classify"},
                "input": [{"type": "message", "role": "user",
                           "content": [{"type": "input_text", "text": "hi"}]}]})
    d.advance(d.now + 3)
    done, = _of(d, "response.done")
    assert done["response"]["conversation_id"] is None
    assert done["response"]["status"] == "completed"
    assert not _of(d, "conversation.item.added") and not _of(d, "conversation.item.done")
    item_id = done["response"]["output"][0]["id"]
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": item_id}))
    assert _of(d, "error")[0]["error"]["code"] == "item_retrieve_invalid_item_id"


def test_input_item_reference_must_name_an_item() -> None:
    d = Driver(Dialect.GA, PROFILE)
    _manual(d, {"input": [{"type": "item_reference", "id": "item_nope"}]})
    err, = _of(d, "error")
    assert (err["error"]["code"], err["error"]["param"]) == ("invalid_value", "response.input[0].id")
    d.send(Event(EventType.ITEM_CREATE, {"item": {"id": "item_mine", "type": "message",
                                                  "role": "user", "content": [
                                                      {"type": "input_text", "text": "hi"}]}}))
    _manual(d, {"input": [{"type": "item_reference", "id": "item_mine"}]})
    assert len(_of(d, "response.created")) == 1 and len(_of(d, "error")) == 1


@BOTH
def test_retrieve_answers_the_item_with_its_transcript_and_delete_removes_it(
        dialect: Dialect) -> None:
    d = Driver(dialect, PROFILE)
    _vad_turn(d)
    user_id = _of(d, "input_audio_buffer.committed")[0]["item_id"]
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": user_id}))
    retrieved, = _of(d, "conversation.item.retrieved")
    assert retrieved["item"]["id"] == user_id and retrieved["item"]["role"] == "user"
    assert retrieved["item"]["content"][0]["transcript"] == "What is the weather like tomorrow?"
    d.send(Event(EventType.ITEM_DELETE, {"item_id": user_id, "event_id": "evt_del"}))
    assert _of(d, "conversation.item.deleted")[0]["item_id"] == user_id
    d.send(Event(EventType.ITEM_DELETE, {"item_id": user_id, "event_id": "evt_del"}))
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": user_id}))
    assert [(e["error"]["code"], e["error"]["event_id"]) for e in _of(d, "error")] == [
        ("item_delete_invalid_item_id", "evt_del"), ("item_retrieve_invalid_item_id", None)]


def test_deleting_the_last_item_makes_the_one_before_it_previous() -> None:
    d = Driver(Dialect.GA, PROFILE)
    for item_id in ("item_a", "item_b"):
        d.send(Event(EventType.ITEM_CREATE, {"item": {"id": item_id, "type": "message",
                                                      "role": "user", "content": []}}))
    d.send(Event(EventType.ITEM_DELETE, {"item_id": "item_b"}))
    d.send(Event(EventType.ITEM_CREATE, {"item": {"id": "item_c", "type": "message",
                                                  "role": "user", "content": []}}))
    added = _of(d, "conversation.item.added")
    assert [(e["item"]["id"], e["previous_item_id"]) for e in added] == [
        ("item_a", None), ("item_b", "item_a"), ("item_c", "item_a")]


def test_response_cancel_by_id_cancels_only_the_active_response() -> None:
    d = Driver(Dialect.GA, PROFILE)
    _manual(d)
    rid = _of(d, "response.created")[0]["response"]["id"]
    d.send(Event(EventType.RESPONSE_CANCEL, {"response_id": "resp_other"}))
    assert _of(d, "error")[0]["error"]["code"] == "response_cancel_not_active"
    assert not _of(d, "response.done")
    d.send(Event(EventType.RESPONSE_CANCEL, {"response_id": rid}))
    done, = _of(d, "response.done")
    assert (done["response"]["id"], done["response"]["status"]) == (rid, "cancelled")


@BOTH
def test_output_audio_buffer_clear_stops_the_response_and_is_acknowledged(
        dialect: Dialect) -> None:
    d = Driver(dialect, PROFILE)
    d.send(Event(EventType.OUTPUT_AUDIO_CLEAR, {}))
    assert _of(d, "error") and not _of(d, "output_audio_buffer.cleared")
    _manual(d)
    rid = _of(d, "response.created")[0]["response"]["id"]
    d.send(Event(EventType.OUTPUT_AUDIO_CLEAR, {}))
    assert _of(d, "response.done")[0]["response"]["status"] == "cancelled"
    assert _of(d, "output_audio_buffer.cleared")[0]["response_id"] == rid


@BOTH
def test_session_update_naming_another_model_is_accepted_and_the_model_kept(
        dialect: Dialect) -> None:
    d = Driver(dialect, PROFILE, model="gpt-realtime-2")
    session: dict[str, Any] = {"model": "gpt-4o-realtime-preview", "instructions": "hi"}
    if dialect is Dialect.GA:
        session["type"] = "realtime"
    d.send(Event(EventType.SESSION_UPDATE, {"session": session}))
    assert not _of(d, "error")
    reported = _of(d, "session.created")[0]["session"]["model"]
    assert _of(d, "session.updated")[0]["session"]["model"] == reported


def test_a_session_remembers_its_latest_items_only() -> None:
    d = Driver(Dialect.GA, PROFILE)
    for i in range(MAX_ITEMS + 1):
        d.send(Event(EventType.ITEM_CREATE, {"item": {"id": f"item_{i}", "type": "message",
                                                      "role": "user", "content": []}}))
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": f"item_{MAX_ITEMS}"}))
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": "item_0"}))
    assert _of(d, "conversation.item.retrieved")[0]["item"]["id"] == f"item_{MAX_ITEMS}"
    assert _of(d, "error")[0]["error"]["code"] == "item_retrieve_invalid_item_id"
