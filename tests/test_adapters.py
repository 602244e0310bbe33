"""Provider adapters: the registry and the two OpenAI generations behind the adapter interface.

Pure data in, data out: no sockets, no clock.
"""

from __future__ import annotations

import orjson
import pytest

from rtbench.protocol import Dialect, ErrorInfo, Event, EventType, ProtocolViolation, SessionConfig
from rtbench.protocol.adapters import OpenAIRealtime, create, for_dialect, names, register
from rtbench.protocol.diagnose import GA_HINT, PREVIEW_HINT


def test_the_registry_holds_both_openai_generations_and_builds_fresh_adapters() -> None:
    assert names() == ["openai_beta", "openai_ga"]
    first, second = create("openai_ga"), create("openai_ga")
    assert first is not second and first.name == "openai_ga"
    assert for_dialect(Dialect.BETA).name == "openai_beta"


def test_an_unknown_adapter_names_the_known_ones_and_a_name_registers_once() -> None:
    with pytest.raises(KeyError, match="openai_beta, openai_ga"):
        create("gemini_live")
    with pytest.raises(ValueError, match="already registered"):
        register("openai_ga", lambda: OpenAIRealtime(Dialect.GA))


def test_beta_wire_names_decode_to_normalized_events_and_ga_passes_them_through() -> None:
    frame = orjson.dumps({"type": "response.audio.delta", "event_id": "e", "response_id": "r",
                          "item_id": "i", "delta": "AAAA"}).decode()
    (event,) = for_dialect(Dialect.BETA).decode(frame)
    assert event.type == EventType.AUDIO_DELTA and event.get("delta") == "AAAA"
    (kept,) = for_dialect(Dialect.GA).decode(frame)
    assert kept.type == "response.audio.delta" and not kept.known


def test_decoding_checks_the_fields_rtbench_reads() -> None:
    adapter = for_dialect(Dialect.GA)
    with pytest.raises(ProtocolViolation) as bad:
        adapter.decode('{"type":"response.done","event_id":"e","response":[]}')
    assert bad.value.kind == "bad_field"
    with pytest.raises(ProtocolViolation) as no_id:
        adapter.decode('{"type":"response.brand_new"}')  # unknown types still need event_id
    assert no_id.value.kind == "bad_field"
    with pytest.raises(ProtocolViolation) as binary:
        adapter.decode(b"\x00")
    assert binary.value.kind == "binary_frame"


def test_the_session_update_has_each_generations_shape() -> None:
    cfg = SessionConfig(voice="marin")
    ga = for_dialect(Dialect.GA).session_update(cfg)
    beta = for_dialect(Dialect.BETA).session_update(cfg)
    assert ga.type == beta.type == EventType.SESSION_UPDATE
    assert ga.get("session")["type"] == "realtime"
    assert ga.get("session")["audio"]["output"]["voice"] == "marin"
    assert beta.get("session")["voice"] == "marin" and "type" not in beta.get("session")


def test_encoding_uses_the_generations_names() -> None:
    commit = Event(EventType.INPUT_AUDIO_COMMIT)
    assert orjson.loads(for_dialect(Dialect.BETA).encode(commit) or "") == {
        "type": "input_audio_buffer.commit"}
    assert for_dialect(Dialect.GA).encode(Event(EventType.CONVERSATION_CREATED)) is None


def test_setup_errors_get_the_generation_mismatch_hint() -> None:
    ga_on_preview = ErrorInfo("invalid_request_error", "unknown_parameter", "x", "session.type")
    assert for_dialect(Dialect.GA).explain_setup_error(ga_on_preview) == PREVIEW_HINT
    beta_on_ga = ErrorInfo("invalid_request_error", "missing_required_parameter", "x",
                           "session.type")
    assert for_dialect(Dialect.BETA).explain_setup_error(beta_on_ga) == GA_HINT
