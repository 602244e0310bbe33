"""The simulator's reasoning-model, noise-reduction and idle-timeout behaviour, sans-IO with
made-up time (no sockets). Every event sent is validated against the openai SDK's models (the
autouse ``referee`` fixture)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from rtbench.protocol import Dialect, Event, EventType, SessionConfig, TurnDetection
from rtbench.protocol.audio import SAMPLES_PER_MS
from rtbench.sim import Dist, FaultRule, Profile

from simdrive import Driver, tone

PROFILE = Profile(first_audio=Dist(400.0), response_audio_ms=400, delta_ms=100,
                  realtime_factor=2.0)
VAD = TurnDetection(silence_duration_ms=200)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * SAMPLES_PER_MS, dtype=np.int16)


def update(d: Driver, session: dict[str, object]) -> dict[str, object]:
    """Send a raw ``session.update``; the ``session.updated`` or ``error`` that answers it."""
    before = len(d.sent)
    d.send(Event(EventType.SESSION_UPDATE, {"session": {"type": "realtime", **session}}))
    [(_, text)] = d.sent[before:]
    answer: dict[str, object] = orjson.loads(text)
    return answer


def first_audio_after_eos(d: Driver) -> float:
    d.stream(silence(200))
    t_eos = d.stream(tone(600))
    d.stream(silence(3000))
    t_first, _ = d.first("response.output_audio.delta")
    return round((t_first - t_eos) * 1000.0, 6)


def test_reasoning_effort_is_echoed_and_each_effort_adds_its_delay() -> None:
    d = Driver(Dialect.GA, PROFILE)
    d.configure(SessionConfig(turn_detection=VAD))
    assert "reasoning" not in d.first("session.updated")[1]["session"]  # type: ignore[operator]
    # no effort set: the profile's first audio exactly (from the end-of-speech chunk's arrival)
    assert first_audio_after_eos(d) == 400.0
    for effort, extra in (("minimal", 0.0), ("low", 200.0), ("xhigh", 2000.0)):
        d = Driver(Dialect.GA, PROFILE)
        d.configure(SessionConfig(turn_detection=VAD, reasoning_effort=effort))
        session = d.first("session.updated")[1]["session"]
        assert session["reasoning"] == {"effort": effort}  # type: ignore[index]
        assert first_audio_after_eos(d) == 400.0 + extra


def test_a_response_create_effort_overrides_the_sessions() -> None:
    d = Driver(Dialect.GA, PROFILE)
    d.configure(SessionConfig(turn_detection=None, reasoning_effort="high"))
    d.stream(tone(300))
    d.send(Event(EventType.INPUT_AUDIO_COMMIT, {}))
    t0 = d.now
    d.send(Event(EventType.RESPONSE_CREATE, {"response": {"reasoning": {"effort": "low"}}}))
    d.advance(t0 + 5.0)
    t_first, _ = d.first("response.output_audio.delta")
    assert round((t_first - t0) * 1000.0, 6) == 600.0  # 400 + low's 200, not high's 1000


@pytest.mark.parametrize(("session", "code", "param"), [
    ({"reasoning": {"effort": "maximal"}}, "invalid_value", "session.reasoning.effort"),
    ({"reasoning": "low"}, "invalid_type", "session.reasoning"),
    ({"reasoning": {"effort": "low", "summary": "auto"}}, "unknown_parameter",
     "session.reasoning.summary"),
    ({"audio": {"input": {"noise_reduction": {"type": "near_field", "strength": -1}}}},
     "invalid_value", "session.audio.input.noise_reduction.strength"),
    ({"audio": {"input": {"noise_reduction": {"type": "near_field", "strength": "max"}}}},
     "invalid_type", "session.audio.input.noise_reduction.strength"),
    ({"audio": {"input": {"noise_reduction": {"type": "studio"}}}}, "invalid_value",
     "session.audio.input.noise_reduction.type"),
])
def test_bad_reasoning_and_noise_reduction_values_are_refused(
        session: dict[str, object], code: str, param: str) -> None:
    answer = update(Driver(Dialect.GA, PROFILE), session)
    assert answer["type"] == "error"
    assert (answer["error"]["code"], answer["error"]["param"]) == (code, param)  # type: ignore[index]


def test_beta_sessions_have_no_reasoning_and_no_strength() -> None:
    d = Driver(Dialect.BETA, PROFILE)
    d.send(Event(EventType.SESSION_UPDATE, {"session": {"reasoning": {"effort": "low"}}}))
    d.send(Event(EventType.SESSION_UPDATE, {"session": {"input_audio_noise_reduction": {
        "type": "near_field", "strength": 0.5}}}))
    errors = [o["error"] for o in d.all_json() if o["type"] == "error"]
    assert [(e["code"], e["param"]) for e in errors] == [  # type: ignore[index]
        ("unknown_parameter", "session.reasoning"),
        ("unknown_parameter", "session.input_audio_noise_reduction.strength")]


def test_noise_reduction_strength_starts_at_one_and_is_kept_when_omitted() -> None:
    d = Driver(Dialect.GA, PROFILE)

    def noise(session: dict[str, object]) -> object:
        answer = update(d, {"audio": {"input": session}})
        return answer["session"]["audio"]["input"]["noise_reduction"]  # type: ignore[index]

    # first enabled without a strength: 1 (the SDK docstring); then set; then kept
    assert noise({"noise_reduction": {"type": "near_field"}}) == {"type": "near_field",
                                                                  "strength": 1.0}
    assert noise({"noise_reduction": {"type": "far_field", "strength": 0.25}}) == {
        "type": "far_field", "strength": 0.25}
    assert noise({"noise_reduction": {"type": "near_field"}}) == {"type": "near_field",
                                                                  "strength": 0.25}
    assert noise({"noise_reduction": None}) is None


def test_idle_timeout_triggers_a_response_after_playback_and_speech_disarms_it() -> None:
    d = Driver(Dialect.GA, PROFILE)
    d.configure(SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200,
                                                           idle_timeout_ms=1000)))
    assert d.first("session.updated")[1]["session"]["audio"]["input"][  # type: ignore[index]
        "turn_detection"]["idle_timeout_ms"] == 1000
    d.stream(silence(200))
    d.stream(tone(600))
    d.stream(silence(5000))  # nothing more said
    t_done, _ = d.first("response.done")
    t_idle, idle = d.first("input_audio_buffer.timeout_triggered")
    # from response.done plus the response's 400 ms of playback, then the 1 s timeout
    assert round((t_idle - t_done) * 1000.0, 6) == 1400.0
    assert idle["audio_end_ms"] - idle["audio_start_ms"] == 1000  # type: ignore[operator]
    after = [o["type"] for o in d.all_json()][[o["type"] for o in d.all_json()].index(
        "input_audio_buffer.timeout_triggered"):]
    # the silent audio is committed as an item, and the server answers it
    assert after[1:4] == ["input_audio_buffer.committed", "conversation.item.added",
                          "conversation.item.done"]
    assert "response.created" in after and after.count("input_audio_buffer.timeout_triggered") >= 2
    # speech before the timeout elapses disarms it
    d = Driver(Dialect.GA, PROFILE)
    d.configure(SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200,
                                                           idle_timeout_ms=1000)))
    d.stream(silence(200))
    d.stream(tone(600))
    d.stream(silence(1500))
    d.stream(tone(600))
    d.stream(silence(1000))
    assert "input_audio_buffer.timeout_triggered" not in d.types()
    assert d.types().count("response.created") == 2


def test_without_idle_timeout_nothing_is_triggered_and_null_is_shown() -> None:
    d = Driver(Dialect.GA, PROFILE)
    d.configure(SessionConfig(turn_detection=VAD))
    td = d.first("session.updated")[1]["session"]["audio"]["input"]["turn_detection"]  # type: ignore[index]
    assert td["idle_timeout_ms"] is None  # as the services show it (§3.1)
    d.stream(tone(600))
    d.stream(silence(8000))
    assert "input_audio_buffer.timeout_triggered" not in d.types()


def test_a_text_only_fault_answers_in_text_although_audio_was_asked_for() -> None:
    d = Driver(Dialect.GA, PROFILE, response_fault=lambda n: FaultRule("text_only", every=1))
    d.configure(SessionConfig(turn_detection=VAD))
    d.stream(tone(600))
    d.stream(silence(2000))
    types = d.types()
    assert "response.output_text.delta" in types and "response.done" in types
    assert not any("output_audio" in t for t in types)
    assert d.injected == ["text_only"]


def test_effort_delays_come_from_a_profile_table_over_the_defaults() -> None:
    from rtbench.sim.profile import DEFAULT_EFFORT_DELAY_MS, ProfileError, profile_from_table

    prof = profile_from_table({"effort_delay_ms": {"high": 1500, "xhigh": 3000.5}}, "p")
    assert dict(prof.effort_delay_ms) == {**DEFAULT_EFFORT_DELAY_MS, "high": 1500.0,
                                          "xhigh": 3000.5}
    assert (prof.effort_delay(None), prof.effort_delay("minimal")) == (0.0, 0.0)
    for bad, says in (({"max": 10}, "not 'max'"), ({"low": -1}, "non-negative"),
                      ({"low": "fast"}, "must be a table of milliseconds"),
                      (5, "must be a table of milliseconds")):
        with pytest.raises(ProfileError, match=says):
            profile_from_table({"effort_delay_ms": bad}, "p")
