"""Full sessions in both dialects touching every event kind the simulator emits, each event
validated with the openai SDK models; the test fails if a kind was never exercised."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from rtbench.protocol import Dialect, Event, EventType, SessionConfig, TurnDetection
from rtbench.protocol.audio import SAMPLES_PER_MS
from rtbench.sim import Dist, FaultRule, Profile

from referee import Referee
from simdrive import Driver, tone

PROFILE = Profile(first_audio=Dist(300.0), response_audio_ms=600, delta_ms=100,
                  realtime_factor=2.0, session_max_s=60.0)
VAD = TurnDetection(silence_duration_ms=200)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * SAMPLES_PER_MS, dtype=np.int16)


def _faults(n: int) -> FaultRule | None:
    kinds = {2: "response_failed_server_error", 3: "response_failed_rate_limit",
             4: "response_failed_insufficient_quota", 5: "response_failed_unavailable"}
    return FaultRule(kinds[n], every=1) if n in kinds else None


def _full_session(dialect: Dialect) -> Driver:
    d = Driver(dialect, PROFILE, faults=[FaultRule("server_error_after_created", every=1)],
               response_fault=_faults, azure=dialect is Dialect.BETA)
    d.configure(SessionConfig(turn_detection=VAD, transcription_model="whisper-1"))
    d.stream(tone(600))                                    # 1: VAD turn, completes
    d.stream(silence(1500))
    for _ in range(4):                                     # 2-5: failed responses
        d.stream(tone(400))
        d.stream(silence(1000))
    d.stream(tone(400))                                    # 6: interrupted by speech
    d.stream(silence(400))
    d.stream(tone(400))
    d.stream(silence(1500))
    done = [e for e in d.all_json() if e["type"] == "response.done"]
    item_id = done[0]["response"]["output"][0]["id"]  # type: ignore[index]
    d.send(Event(EventType.ITEM_TRUNCATE, {"item_id": item_id, "content_index": 0,
                                           "audio_end_ms": 200}))
    d.send(Event(EventType.ITEM_TRUNCATE, {"item_id": item_id, "content_index": 0,
                                           "audio_end_ms": 99999}))
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": item_id}))
    d.send(Event(EventType.ITEM_DELETE, {"item_id": item_id}))
    d.send(Event(EventType.ITEM_RETRIEVE, {"item_id": item_id}))  # deleted
    d.send(Event(EventType.RESPONSE_CREATE, {"response": {"metadata": {"k": "v"}}}))
    d.send(Event(EventType.RESPONSE_CREATE, {}))           # already active
    d.send(Event(EventType.OUTPUT_AUDIO_CLEAR, {}))        # cuts the manual response off
    d.send(Event(EventType.RESPONSE_CREATE, {}))           # manual response, then cancel
    d.send(Event(EventType.RESPONSE_CANCEL, {}))
    d.send(Event(EventType.RESPONSE_CANCEL, {}))           # not active
    d.send(Event(EventType.INPUT_AUDIO_CLEAR, {}))
    d.send(Event(EventType.INPUT_AUDIO_COMMIT, {}))        # empty
    d.send(Event(EventType.ITEM_CREATE, {"item": {"type": "message", "role": "user",
                                                  "content": [{"type": "input_text",
                                                               "text": "hi"}]}}))
    d.configure(SessionConfig(turn_detection=None))       # manual turn
    d.stream(tone(300))
    d.send(Event(EventType.INPUT_AUDIO_COMMIT, {}))
    d.send(Event(EventType.RESPONSE_CREATE, {}))
    d.advance(d.now + 3)
    d.send(Event("session.bogus", {}))                     # unknown client event
    d.send(Event(EventType.SESSION_UPDATE, {"session": {"modalities": ["audio"]}
                                            if dialect is Dialect.GA else {"type": "realtime"}}))
    d.advance(61.0)                                        # session expiry
    return d


COMMON = {
    "session.created", "session.updated", "error", "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
    "input_audio_buffer.cleared", "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed", "conversation.item.truncated",
    "response.created", "response.output_item.added", "response.content_part.added",
    "response.content_part.done", "response.output_item.done", "response.done",
    "rate_limits.updated", "conversation.item.retrieved", "conversation.item.deleted",
    "output_audio_buffer.cleared",
}
GA_ONLY = {"conversation.item.added", "conversation.item.done", "response.output_audio.delta",
           "response.output_audio.done", "response.output_audio_transcript.delta",
           "response.output_audio_transcript.done"}
BETA_ONLY = {"conversation.created", "conversation.item.created", "response.audio.delta",
             "response.audio.done", "response.audio_transcript.delta",
             "response.audio_transcript.done"}


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_every_event_kind_validates_with_the_sdk(dialect: Dialect, referee: Referee) -> None:
    assert referee.check() == []
    referee.seen.clear()
    d = _full_session(dialect)
    assert referee.check() == []
    seen = {t for (dl, t) in referee.seen if dl is dialect}
    assert seen == COMMON | (GA_ONLY if dialect is Dialect.GA else BETA_ONLY)
    statuses = [(e["response"]["status"], (e["response"]["status_details"] or {}).get("reason"))
                for e in d.all_json() if e["type"] == "response.done"]  # type: ignore[index]
    assert ("cancelled", "turn_detected") in statuses
    assert ("cancelled", "client_cancelled") in statuses
    assert statuses.count(("failed", None)) == 4
    codes = {e["error"]["code"] for e in d.all_json() if e["type"] == "error"}  # type: ignore[index]
    assert codes >= {None, "conversation_already_has_active_response", "response_cancel_not_active",
                     "input_audio_buffer_commit_empty", "invalid_value", "unknown_parameter",
                     "session_expired", "item_retrieve_invalid_item_id"}
    assert d.closed is not None and d.closed.code == 1001


def test_the_referee_rejects_a_wrong_shape() -> None:
    ref = Referee()
    ref.observe(Dialect.GA, orjson.dumps({"type": "response.audio.delta", "event_id": "e",
                                          "response_id": "r", "item_id": "i", "output_index": 0,
                                          "content_index": 0, "delta": ""}).decode())
    ref.observe(Dialect.BETA, orjson.dumps({"type": "input_audio_buffer.speech_started",
                                            "event_id": "e", "item_id": "i"}).decode())
    failures = ref.check()
    assert len(failures) == 2
    assert "audio_start_ms" in failures[1]
