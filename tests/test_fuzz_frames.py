"""Hostile server frames: whatever a server sends, a session records it and never crashes."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtbench.client.session import ClientSession
from rtbench.client.workload import ChunkPlan, load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target, load_scenario
from rtbench.metrics.recorder import Recorder
from rtbench.metrics.records import ErrorRecord, TurnRecord
from rtbench.protocol import EventType

from conftest import DEFAULT_SCENARIO

SERVER_TYPES = [e.value for e in EventType] + ["response.audio.delta", "brand.new.event", ""]

# Real frames to mutate (valid GA shapes as the simulator sends them).
SEEDS = [
    {"type": "session.created", "event_id": "event_1", "session": {"id": "sess_1"}},
    {"type": "input_audio_buffer.speech_stopped", "event_id": "e", "audio_end_ms": 1200,
     "item_id": "item_1"},
    {"type": "response.created", "event_id": "e", "response": {"id": "resp_1"}},
    {"type": "response.output_audio.delta", "event_id": "e", "response_id": "resp_1",
     "item_id": "item_2", "output_index": 0, "content_index": 0, "delta": "AAAA"},
    {"type": "response.output_audio_transcript.delta", "event_id": "e",
     "response_id": "resp_1", "item_id": "item_2", "delta": "hi"},
    {"type": "response.done", "event_id": "e", "response": {"id": "resp_1",
     "status": "completed", "usage": {"input_tokens": 1}}},
    {"type": "error", "event_id": "e", "error": {"type": "server_error", "code": None,
     "message": "boom"}},
    {"type": "rate_limits.updated", "event_id": "e", "rate_limits": []},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn) -> str | bytes:
    base = dict(draw(st.sampled_from(SEEDS)))
    how = draw(st.sampled_from(["field", "drop", "type", "truncate", "huge", "extra"]))
    if how == "field":
        base[draw(st.sampled_from(sorted(base)))] = draw(json_values)
    elif how == "drop":
        base.pop(draw(st.sampled_from(sorted(base))))
    elif how == "type":
        base["type"] = draw(st.sampled_from(SERVER_TYPES) | st.text(max_size=30))
    elif how == "huge":
        base[draw(st.sampled_from(sorted(base)))] = "x" * draw(st.integers(10_000, 2_000_000))
    elif how == "extra":
        base[draw(st.text(max_size=10))] = draw(json_values)
    text = json.dumps(base)
    if how == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


frames = st.one_of(
    mutated(),
    st.binary(max_size=200),
    st.text(max_size=200),
    st.builds(lambda t, d: json.dumps({"type": t, **d}),
              st.sampled_from(SERVER_TYPES), st.dictionaries(st.text(max_size=12), json_values,
                                                             max_size=5)),
)


@dataclass
class MemorySink:
    recorder: Recorder = field(default_factory=Recorder)
    turns: list[TurnRecord] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)

    def turn(self, record: TurnRecord) -> None:
        self.turns.append(record)

    def error(self, record: ErrorRecord) -> None:
        self.errors.append(record)


@functools.cache
def _plan(audio_dir: Path) -> ChunkPlan:
    """Read and encode the utterance once per module, not once per hypothesis example."""
    return plan_chunks(load_utterance(audio_dir / "en_timer.wav"), 20)


@functools.cache
def _scenario() -> Scenario:
    return load_scenario(DEFAULT_SCENARIO)


def make_session(scenario: Scenario) -> tuple[ClientSession, MemorySink]:
    plan = _plan(scenario.audio_dir)
    sink = MemorySink()
    session = ClientSession(0, Target("t", "ws://127.0.0.1:1/v1/realtime?model=m"), scenario,
                            [plan], "", sink, 0.0, clock=time.monotonic)
    return session, sink


@pytest.mark.slow  # ~20 s: hypothesis drawing 10,000 examples; the session work is cached
@settings(max_examples=10_000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frame=frames)
def test_any_frame_is_recorded_never_raised(frame: str | bytes) -> None:
    session, sink = make_session(_scenario())  # a fresh session per example, fixtures cached
    session.begin_turn(0).tracker.on_eos_sent(0.0)
    used = session.handle_frame(frame, 1.0)
    protocol = [e for e in sink.errors if e.kind == "protocol"]
    if used:
        assert not protocol
    else:
        assert len(protocol) == 1 or sum(session.unknown_events.values()) == 1
    if isinstance(frame, bytes):
        assert not used and protocol[0].code == "binary_frame"


def test_truncated_and_mistyped_frames_become_protocol_errors(scenario: Scenario) -> None:
    session, sink = make_session(scenario)
    bad = ['{"type":"response.done","event_id":"e","response":{"id":"r"',
           '{"type":"response.output_audio.delta","event_id":"e","response_id":"r",'
           '"item_id":"i","delta":5}',
           '{"type":"response.done","event_id":"e","response":[]}',
           '{"type":"error","event_id":"e","error":"boom"}',
           '{"type":"input_audio_buffer.speech_stopped","event_id":"e","audio_end_ms":true,'
           '"item_id":"i"}',
           '{"type":"session.created","session":{}}']
    for frame in bad:
        assert session.handle_frame(frame, 1.0) is False
    assert [e.code for e in sink.errors] == ["bad_json"] + ["bad_field"] * 5
    assert all(e.kind == "protocol" and e.phase == "session" for e in sink.errors)


def test_unknown_event_types_are_counted_and_recorded_once(scenario: Scenario) -> None:
    session, sink = make_session(scenario)
    for _ in range(3):
        assert session.handle_frame('{"type":"response.new_thing","event_id":"e"}', 1.0) is False
    assert session.unknown_events == {"response.new_thing": 3}
    assert [(e.kind, e.severity) for e in sink.errors] == [("unknown_event", "benign")]
