"""The client-side conversation state machine, driven by hand: events in, actions out.

Rules of this module: no sockets, no trio, no clock. Every event is hand-made and every time
stamp explicit, chosen as binary fractions (1.25, 1.75 ...) so latencies compare exactly.
"""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from rtbench.metrics.records import TurnRecord
from rtbench.protocol import Dialect, Event, EventType, SessionConfig
from rtbench.protocol.adapters import for_dialect
from rtbench.protocol.conversation import (
    Conversation,
    Ended,
    Failed,
    FirstAudio,
    ResponseEnded,
    Send,
    SessionCreated,
    SessionUpdated,
    Setup,
    Truncated,
    TurnEnded,
)
from rtbench.protocol.diagnose import PREVIEW_HINT

from simdrive import tone

#: 100 ms of an audible tone (PCM16 at 24 kHz: 48 bytes a ms), heard from its first sample.
AUDIO_100MS = base64.b64encode(tone(100).tobytes()).decode()


def ev(etype: str, **data: object) -> Event:
    return Event(etype, {"event_id": "event_1", **data})


def error(code: str | None, etype: str = "invalid_request_error", param: str | None = None) -> Event:
    return ev(EventType.ERROR, error={"type": etype, "code": code, "message": f"said {code}",
                                      "param": param})


def created(sid: str = "sess_1") -> Event:
    return ev(EventType.SESSION_CREATED, session={"id": sid})


def response_created(rid: str) -> Event:
    return ev(EventType.RESPONSE_CREATED, response={"id": rid, "status": "in_progress"})


def audio(rid: str, item: str = "item_a") -> Event:
    return ev(EventType.AUDIO_DELTA, response_id=rid, item_id=item, delta=AUDIO_100MS)


def done(rid: str, status: str = "completed", **details: object) -> Event:
    response: dict[str, object] = {"id": rid, "status": status,
                                   "usage": {"input_tokens": 7, "output_tokens": 5,
                                             "total_tokens": 12}}
    if details:
        response["status_details"] = details
    return ev(EventType.RESPONSE_DONE, response=response)


def record(turn: int = 0) -> TurnRecord:
    return TurnRecord(target="t", region="r", model="m", session_idx=0, session_id=None,
                      turn_idx=turn, utterance="u")


def feed(conv: Conversation, *timed: tuple[Event, float]) -> list[object]:
    """Receive each event at its stamp; every action queued, in order."""
    actions: list[object] = []
    for event, t in timed:
        conv.receive(event, t)
        actions.extend(conv.next_actions())
    return actions


def ready(dialect: Dialect = Dialect.GA) -> Conversation:
    conv = Conversation(for_dialect(dialect))
    feed(conv, (created(), 0.25))
    conv.configure(SessionConfig())
    feed(conv, (ev(EventType.SESSION_UPDATED, session={}), 0.5))
    assert conv.state is Setup.READY
    return conv


# -- set-up -----------------------------------------------------------------------------------


def test_setup_goes_created_configure_updated() -> None:
    conv = Conversation(for_dialect(Dialect.GA))
    assert conv.awaiting == "session.created" and conv.phase == "session"
    assert feed(conv, (created("sess_abc"), 0.25)) == [SessionCreated(0.25)]
    assert conv.state is Setup.CREATED and conv.session_id == "sess_abc" and conv.awaiting is None
    send = conv.configure(SessionConfig())
    assert send.event.type == EventType.SESSION_UPDATE
    assert orjson.loads(send.wire)["session"]["type"] == "realtime"
    assert conv.awaiting == "session.updated"
    assert feed(conv, (ev(EventType.SESSION_UPDATED, session={}), 0.75)) == [SessionUpdated(0.75)]
    assert conv.state is Setup.READY


def test_a_repeated_created_or_an_unasked_updated_changes_nothing() -> None:
    conv = Conversation(for_dialect(Dialect.GA))
    assert feed(conv, (ev(EventType.SESSION_UPDATED, session={}), 0.125)) == []
    assert conv.state is Setup.CONNECTED
    feed(conv, (created("sess_1"), 0.25))
    assert feed(conv, (created("sess_2"), 0.5)) == []
    assert conv.session_id == "sess_1"
    with pytest.raises(ValueError, match="cannot configure"):
        Conversation(for_dialect(Dialect.GA)).configure(SessionConfig())


def test_an_error_during_setup_ends_the_session_with_the_protocol_hint() -> None:
    conv = Conversation(for_dialect(Dialect.GA))
    feed(conv, (created(), 0.25))
    conv.configure(SessionConfig())
    actions = feed(conv, (error("unknown_parameter", param="session.type"), 0.5))
    assert actions == [
        Failed("session", "error_event", "unknown_parameter", "fatal",
               f"{PREVIEW_HINT} (server said: said unknown_parameter)"),
        Ended("error during session set-up"),
    ]
    assert conv.state is Setup.ENDED and conv.ended == "error during session set-up"
    # Read on after the end: rows still count, nothing ends twice.
    assert feed(conv, (error(None, "server_error"), 0.75)) == [
        Failed("session", "error_event", "server_error", "retryable", "said None")]
    assert conv.closed("1000", "bye") == []


def test_an_error_right_after_created_ends_it_even_if_benign() -> None:
    conv = Conversation(for_dialect(Dialect.GA))
    feed(conv, (created(), 0.25))
    actions = feed(conv, (error("response_cancel_not_active"), 0.5))
    assert [type(a) for a in actions] == [Failed, Ended]
    assert isinstance(actions[0], Failed) and actions[0].severity == "benign"


def test_an_error_between_turns_is_a_row_but_not_an_end() -> None:
    conv = ready()
    assert feed(conv, (error(None, "server_error"), 1.0)) == [
        Failed("session", "error_event", "server_error", "retryable", "said None")]
    assert conv.ended is None


def test_setup_timeouts_name_what_was_awaited() -> None:
    conv = Conversation(for_dialect(Dialect.GA))
    assert conv.setup_timed_out(10.0) == [
        Failed("session", "timeout", "no_session_created", "retryable",
               "no session.created within 10 s"),
        Ended("no session.created"),
    ]
    conv = Conversation(for_dialect(Dialect.GA))
    feed(conv, (created(), 0.25))
    conv.configure(SessionConfig())
    assert conv.setup_timed_out(2.5)[0] == Failed(
        "session", "timeout", "no_session_updated", "retryable", "no session.updated within 2.5 s")
    with pytest.raises(ValueError, match="waits for nothing"):
        ready().setup_timed_out(1.0)


def test_malformed_frames_and_unknown_types_become_rows_not_exceptions() -> None:
    conv = Conversation(for_dialect(Dialect.GA))
    assert conv.receive_frame('{"type":"response.done"', 1.0) is False
    assert conv.receive_frame('{"type":"x.new","event_id":"e"}', 1.0) is False
    assert conv.receive_frame('{"type":"x.new","event_id":"e"}', 1.0) is False
    assert [(a.phase, a.kind, a.code, a.severity) for a in conv.next_actions()
            if isinstance(a, Failed)] == [("session", "protocol", "bad_json", "retryable"),
                                          ("session", "unknown_event", "x.new", "benign")]
    assert conv.unknown_events == {"x.new": 2}
    conv.begin_turn(record())
    assert conv.receive_frame(b"\x01", 1.0) is False
    (row,) = conv.next_actions()
    assert isinstance(row, Failed) and (row.phase, row.code) == ("turn", "binary_frame")
    assert conv.receive_frame(orjson.dumps({"type": "session.created", "event_id": "e",
                                            "session": {"id": "sess_9"}}).decode(), 1.0)


# -- turns ------------------------------------------------------------------------------------


def test_a_server_vad_turn_with_exact_latencies() -> None:
    conv = ready()
    turn = conv.begin_turn(record())
    assert turn.sends == () and conv.phase == "turn"
    conv.eos_sent(0, 1.0)
    actions = feed(
        conv,
        (ev(EventType.SPEECH_STOPPED, audio_end_ms=2700, item_id="item_u"), 1.25),
        (response_created("resp_1"), 1.5),
        (audio("resp_1"), 1.75),
        (ev(EventType.AUDIO_TRANSCRIPT_DELTA, response_id="resp_1", delta="Hi"), 1.875),
        (audio("resp_1"), 2.0),
        (done("resp_1"), 2.5),
    )
    assert actions == [FirstAudio(0), ResponseEnded(0)]
    (ended,) = conv.end_turn(0)
    assert isinstance(ended, TurnEnded)
    rec = ended.record
    assert (rec.status, rec.error_code, rec.response_id) == ("ok", None, "resp_1")
    assert (rec.vad_ms, rec.ttfa_ms, rec.first_transcript_ms, rec.response_done_ms) == (
        250.0, 750.0, 875.0, 1500.0)
    assert (rec.audio_end_ms, rec.output_audio_ms, rec.total_tokens) == (2700, 200.0, 12)
    assert conv.turns == [] and conv.phase == "session"


def pcm_b64(pcm: np.ndarray) -> str:
    return base64.b64encode(pcm.astype("<i2").tobytes()).decode()


def test_audible_onset_silence_pad_and_the_answer_after_a_preamble() -> None:
    conv = ready()
    conv.begin_turn(record())
    conv.eos_sent(0, 1.0)
    silent, late = np.zeros(2400, np.int16), np.concatenate([np.zeros(720, np.int16), tone(70)])
    message = {"type": "message", "role": "assistant", "content": []}
    feed(conv, (response_created("resp_1"), 1.5),
         (ev(EventType.OUTPUT_ITEM_ADDED, response_id="resp_1", item={**message, "id": "pre"}),
          1.5),
         # preamble: 100 ms of silence, then 30 ms of silence and 70 ms of tone; the second
         # delta arrives before the first has played, so it plays from 1.85 and is heard at
         # 1.85 + 0.03 (its 30 ms of silence are three whole 10 ms windows)
         (ev(EventType.AUDIO_DELTA, response_id="resp_1", item_id="pre", delta=pcm_b64(silent)),
          1.75),
         (ev(EventType.AUDIO_DELTA, response_id="resp_1", item_id="pre", delta=pcm_b64(late)),
          1.8125),
         (ev(EventType.OUTPUT_ITEM_ADDED, response_id="resp_1", item={**message, "id": "ans"}),
          2.0),
         # the answer arrives after the preamble has played (1.95): heard on arrival
         (ev(EventType.AUDIO_DELTA, response_id="resp_1", item_id="ans", delta=AUDIO_100MS), 2.5),
         (ev(EventType.AUDIO_DELTA, response_id="resp_1", item_id="ans", delta=AUDIO_100MS), 2.5),
         (done("resp_1"), 3.0))
    rec = conv.end_turn(0)[-1]
    assert isinstance(rec, TurnEnded) and rec.record.status == "ok"
    r = rec.record
    assert (r.ttfb_ms, r.ttfa_answer_ms, r.output_items, r.preamble_audio_ms) == (
        750.0, 1500.0, 2, 200.0)
    assert (r.ttfa_ms, r.silence_pad_ms) == (pytest.approx(880.0), pytest.approx(130.0))


def test_one_item_answers_at_its_first_audible_sample() -> None:
    conv = ready()
    conv.begin_turn(record())
    conv.eos_sent(0, 1.0)
    feed(conv, (response_created("resp_1"), 1.5), (audio("resp_1"), 1.75), (done("resp_1"), 2.0))
    r = conv.end_turn(0)[-1]
    assert isinstance(r, TurnEnded)
    assert (r.record.ttfb_ms, r.record.ttfa_ms, r.record.ttfa_answer_ms, r.record.silence_pad_ms,
            r.record.output_items, r.record.preamble_audio_ms) == (750.0, 750.0, 750.0, 0.0, 1, 0.0)


def test_a_manual_turn_commits_then_asks_and_counts_from_the_commit() -> None:
    conv = ready(Dialect.BETA)
    turn = conv.begin_turn(record(), manual=True)
    assert [orjson.loads(s.wire)["type"] for s in turn.sends] == [
        "input_audio_buffer.commit", "response.create"]
    conv.eos_sent(0, 1.0)
    conv.commit_sent(0, 1.25)
    beta_audio = Event(EventType.AUDIO_DELTA, audio("resp_m").data)
    # Through the beta adapter: the wire name response.audio.delta is this turn's audio.
    assert conv.receive_frame(orjson.dumps({"type": "response.created", "event_id": "e",
                                            "response": {"id": "resp_m"}}).decode(), 1.5)
    assert conv.receive_frame(orjson.dumps({"type": "response.audio.delta",
                                            **beta_audio.data}).decode(), 2.25)
    feed(conv, (done("resp_m"), 3.0))
    rec = conv.end_turn(0)[-1]
    assert isinstance(rec, TurnEnded)
    assert (rec.record.vad_ms, rec.record.ttfa_ms, rec.record.response_done_ms) == (
        None, 1000.0, 1750.0)


def test_a_text_prompt_is_a_user_message_then_response_create() -> None:
    sends = ready().prompt("Say hello.")
    assert [s.event.type for s in sends] == [EventType.ITEM_CREATE, EventType.RESPONSE_CREATE]
    item = orjson.loads(sends[0].wire)["item"]
    assert item["content"] == [{"type": "input_text", "text": "Say hello."}]


def test_barge_in_truncates_what_was_played_and_takes_the_cancellation_as_ok() -> None:
    conv = ready()
    conv.begin_turn(record(0))
    conv.eos_sent(0, 1.0)
    feed(conv, (response_created("resp_0"), 1.25), (audio("resp_0", "item_0"), 1.5),
         (audio("resp_0", "item_0"), 1.5), (audio("resp_0", "item_0"), 1.5))  # 300 ms arrived
    conv.barge_sent(0, 1.625)
    conv.begin_turn(record(1))
    actions = feed(conv, (ev(EventType.SPEECH_STARTED, audio_start_ms=900, item_id="item_u2"),
                          1.75))
    # 250 ms played in real time since the first delta at 1.5 (of 300 ms received).
    assert len(actions) == 1 and isinstance(actions[0], Send)
    assert orjson.loads(actions[0].wire) == {"type": "conversation.item.truncate",
                                             "item_id": "item_0", "content_index": 0,
                                             "audio_end_ms": 250}
    actions = feed(conv, (done("resp_0", "cancelled", type="cancelled", reason="turn_detected"),
                          2.0),
                   (ev(EventType.ITEM_TRUNCATED, item_id="item_0", content_index=0,
                       audio_end_ms=250), 2.125),
                   (response_created("resp_1"), 2.5))
    assert actions == [ResponseEnded(0), Truncated(0)]
    rec = conv.end_turn(0)[-1]
    assert isinstance(rec, TurnEnded)
    r = rec.record
    assert (r.status, r.barge_in, r.truncated, r.truncate_audio_end_ms) == ("ok", True, True, 250)
    assert (r.interrupt_ms, r.status_reason) == (375.0, "turn_detected")
    # The next turn owns the next response, not the interrupted one.
    assert conv.turns[0].tracker.record.response_id == "resp_1"


def test_a_turn_timeout_is_one_row() -> None:
    conv = ready()
    conv.begin_turn(record())
    actions = conv.end_turn(0, timed_out_after_s=20.0)
    assert actions[0] == Failed("turn", "timeout", "turn_timeout", "retryable",
                                "no response.done within 20 s "
                                "(saw nothing of the turn; no speech_started)")
    assert isinstance(actions[1], TurnEnded) and actions[1].record.status == "timeout"


@pytest.mark.parametrize(("events", "said"), [
    ([ev(EventType.SPEECH_STARTED)], "saw speech_started; no committed"),
    ([ev(EventType.SPEECH_STARTED), ev(EventType.INPUT_AUDIO_COMMITTED, item_id="u")],
     "saw speech_started, committed; no response.created"),
    ([ev(EventType.SPEECH_STARTED), ev(EventType.INPUT_AUDIO_COMMITTED, item_id="u"),
      response_created("resp_1")], "saw speech_started, committed, response.created; no audio"),
    ([ev(EventType.SPEECH_STARTED), ev(EventType.INPUT_AUDIO_COMMITTED, item_id="u"),
      response_created("resp_1"), audio("resp_1")],
     "saw speech_started, committed, response.created, audio, audible audio; no response.done"),
])
def test_a_timeout_says_what_it_last_saw(events: list[Event], said: str) -> None:
    conv = ready()
    conv.begin_turn(record())
    conv.eos_sent(0, 1.0)
    feed(conv, *((e, 1.5) for e in events))
    failed = conv.end_turn(0, timed_out_after_s=20.0)[0]
    assert isinstance(failed, Failed) and failed.message == f"no response.done within 20 s ({said})"


def test_a_completed_response_with_nothing_audible_is_a_no_audio_failure() -> None:
    conv = ready()
    conv.begin_turn(record())
    conv.eos_sent(0, 1.0)
    silent = pcm_b64(np.zeros(4800, np.int16))
    feed(conv, (response_created("resp_1"), 1.5),
         (ev(EventType.AUDIO_DELTA, response_id="resp_1", item_id="i", delta=silent), 1.75),
         (done("resp_1"), 2.0))
    failed, ended = conv.end_turn(0)
    assert failed == Failed("turn", "no_audio", "no_audio", "retryable",
                            "response resp_1 completed with 200 ms of audio, none above the "
                            "audible threshold")
    assert isinstance(ended, TurnEnded)
    r = ended.record
    assert (r.status, r.error_code, r.ttfb_ms, r.ttfa_ms) == ("error", "no_audio", 750.0, None)
    # without any delta, and a session that asked for text only: that is what it asked for
    conv.begin_turn(record(1))
    feed(conv, (response_created("resp_2"), 2.5), (done("resp_2"), 3.0))
    assert conv.end_turn(1)[0] == Failed("turn", "no_audio", "no_audio", "retryable",
                                         "response resp_2 completed with no audio delta")
    text = Conversation(for_dialect(Dialect.GA))
    feed(text, (created(), 0.25))
    text.configure(SessionConfig(output_modalities=("text",)))
    text.begin_turn(record())
    feed(text, (response_created("resp_t"), 1.5), (done("resp_t"), 2.0))
    (ok,) = text.end_turn(0)
    assert isinstance(ok, TurnEnded) and ok.record.status == "ok"


def test_a_failed_response_is_a_response_failed_row_with_its_code() -> None:
    conv = ready()
    conv.begin_turn(record())
    feed(conv, (response_created("resp_1"), 1.0),
         (done("resp_1", "failed", type="failed",
               error={"type": "server_error", "code": "rate_limit_exceeded",
                      "message": "Rate limit reached"}), 1.5))
    row, ended = conv.end_turn(0)
    assert row == Failed("turn", "response_failed", "rate_limit_exceeded", "retryable",
                         "Rate limit reached")
    assert isinstance(ended, TurnEnded) and ended.record.error_code == "rate_limit_exceeded"


def test_benign_races_inside_a_turn_do_not_end_it() -> None:
    conv = ready()
    conv.begin_turn(record())
    assert feed(conv, (error("conversation_already_has_active_response"), 1.0)) == []
    assert not conv.turns[0].tracker.finished


def test_an_error_then_the_close_records_both_but_a_close_alone_once() -> None:
    conv = ready()
    conv.begin_turn(record())
    assert feed(conv, (error("session_expired"), 1.0)) == [ResponseEnded(0)]
    assert conv.closed("1001", "expired") == [
        Failed("turn", "close", "1001", "fatal", "connection closed: expired"),
        Ended("closed")]
    row, ended = conv.end_turn(0)
    assert (row.kind, row.code) == ("error_event", "session_expired")  # type: ignore[union-attr]
    assert isinstance(ended, TurnEnded) and ended.record.error_code == "session_expired"

    conv = ready()
    conv.begin_turn(record())
    assert [type(a) for a in conv.closed("1006", "abnormal")] == [Failed, Ended]
    (only,) = conv.end_turn(0)
    assert isinstance(only, TurnEnded)
    assert (only.record.status, only.record.error_code) == ("error", "close_1006")


def test_send_moments_for_a_turn_no_longer_in_flight_are_ignored() -> None:
    conv = ready()
    conv.begin_turn(record())
    conv.end_turn(0, timed_out_after_s=1.0)
    conv.eos_sent(0, 5.0)  # a late send-completion callback
    conv.commit_sent(0, 5.0)
    conv.barge_sent(0, 5.0)
    with pytest.raises(ValueError, match="not in flight"):
        conv.end_turn(0)


def test_finish_ends_quietly() -> None:
    conv = ready()
    conv.finish()
    assert (conv.state, conv.ended) == (Setup.ENDED, "finished")
    assert conv.closed("1000", "") == []


def test_a_reply_before_the_end_of_speech_is_flagged_premature() -> None:
    conv = ready()
    conv.begin_turn(record())
    # the server's VAD stopped in a pause and answered before the last speech chunk left
    feed(conv, (ev(EventType.SPEECH_STOPPED, audio_end_ms=900), 0.75),
         (response_created("resp_1"), 0.875))
    conv.eos_sent(0, 1.0)
    feed(conv, (audio("resp_1"), 1.25), (done("resp_1"), 1.5))
    rec = conv.end_turn(0)[-1]
    assert isinstance(rec, TurnEnded)
    r = rec.record
    # kept in the row as measured (negative), flagged, and so kept out of the histograms
    assert (r.status, r.premature, r.vad_ms, r.ttfa_ms) == ("ok", True, -250.0, 250.0)
    conv.begin_turn(record(1))
    conv.eos_sent(1, 2.0)
    feed(conv, (ev(EventType.SPEECH_STOPPED), 2.25), (response_created("resp_2"), 2.25),
         (audio("resp_2"), 2.5), (done("resp_2"), 2.75))
    later = conv.end_turn(1)[-1]
    assert isinstance(later, TurnEnded) and later.record.premature is False


def test_a_barge_in_during_the_answer_truncates_the_answer_item() -> None:
    conv = ready()
    conv.begin_turn(record(0))
    conv.eos_sent(0, 1.0)
    message = {"type": "message", "role": "assistant", "content": []}
    feed(conv, (response_created("resp_0"), 1.25),
         (ev(EventType.OUTPUT_ITEM_ADDED, response_id="resp_0", item={**message, "id": "pre"}),
          1.25),
         (audio("resp_0", "pre"), 1.5),       # the preamble plays 1.5 .. 1.6
         (ev(EventType.OUTPUT_ITEM_ADDED, response_id="resp_0", item={**message, "id": "ans"}),
          1.5),
         (audio("resp_0", "ans"), 1.75), (audio("resp_0", "ans"), 1.75))  # answer from 1.75
    conv.barge_sent(0, 1.8125)
    conv.begin_turn(record(1))
    actions = feed(conv, (ev(EventType.SPEECH_STARTED, item_id="item_u2"), 1.875))
    assert len(actions) == 1 and isinstance(actions[0], Send)
    # 125 ms of the answer played (of 200 received): the answer item is the one cut
    assert orjson.loads(actions[0].wire) == {"type": "conversation.item.truncate",
                                             "item_id": "ans", "content_index": 0,
                                             "audio_end_ms": 125}
    feed(conv, (done("resp_0", "cancelled", type="cancelled", reason="turn_detected"), 2.0),
         (ev(EventType.ITEM_TRUNCATED, item_id="ans", content_index=0, audio_end_ms=125), 2.125))
    rec = conv.end_turn(0)[-1]
    assert isinstance(rec, TurnEnded) and rec.record.truncated


def test_a_typed_prompt_has_no_end_of_speech_to_answer_before() -> None:
    conv = ready()
    conv.begin_turn(record())
    conv.prompt("Say hello.")
    feed(conv, (response_created("resp_1"), 1.25), (audio("resp_1"), 1.5), (done("resp_1"), 2.0))
    rec = conv.end_turn(0)[-1]
    assert isinstance(rec, TurnEnded)
    assert (rec.record.status, rec.record.premature, rec.record.ttfa_ms) == ("ok", False, None)


def test_a_response_cancelled_by_the_rest_of_the_utterance_is_followed_by_the_turns_answer() -> None:
    conv = ready()
    conv.begin_turn(record(), spoken=True)
    # the server's VAD ended the turn in a pause and answered; the user went on speaking, so
    # it cancelled that response (turn_detected) and answers again after the whole utterance
    actions = feed(conv, (ev(EventType.SPEECH_STOPPED, audio_end_ms=900), 0.75),
                   (response_created("resp_1"), 0.75), (ev(EventType.SPEECH_STARTED), 0.875),
                   (done("resp_1", "cancelled", type="cancelled", reason="turn_detected"), 0.875))
    assert actions == []  # not the end of the turn
    conv.eos_sent(0, 1.0)
    actions = feed(conv, (ev(EventType.SPEECH_STOPPED), 1.25), (response_created("resp_2"), 1.25),
                   (audio("resp_2"), 1.5), (done("resp_2"), 1.75))
    assert actions == [FirstAudio(0), ResponseEnded(0)]
    (ended,) = conv.end_turn(0)
    assert isinstance(ended, TurnEnded)
    r = ended.record
    assert (r.status, r.premature, r.response_id, r.response_status) == (
        "ok", True, "resp_2", "completed")
    # measured on the answer, from T_eos; the first speech_stopped (too early) is the VAD's
    assert (r.ttfb_ms, r.response_done_ms, r.vad_ms, r.output_audio_ms) == (
        500.0, 750.0, -250.0, 100.0)


def test_an_answer_over_before_the_end_of_speech_is_followed_only_in_a_spoken_turn() -> None:
    conv = ready()
    conv.begin_turn(record(), spoken=True)
    assert feed(conv, (ev(EventType.SPEECH_STOPPED), 0.5), (response_created("resp_1"), 0.5),
                (audio("resp_1"), 0.625), (done("resp_1"), 0.75)) == [FirstAudio(0)]
    conv.eos_sent(0, 1.0)
    feed(conv, (response_created("resp_2"), 1.25), (audio("resp_2"), 1.5), (done("resp_2"), 1.75))
    (ended,) = conv.end_turn(0)
    assert isinstance(ended, TurnEnded)
    assert (ended.record.response_id, ended.record.premature, ended.record.ttfb_ms) == (
        "resp_2", True, 500.0)
    # the probe's speech stamps no T_eos: its turn is the first response
    probe = ready()
    probe.begin_turn(record())
    assert feed(probe, (response_created("resp_1"), 0.5), (audio("resp_1"), 0.625),
                (done("resp_1"), 0.75)) == [FirstAudio(0), ResponseEnded(0)]


def test_a_response_no_turn_took_is_never_a_later_turns() -> None:
    conv = ready()
    conv.begin_turn(record(0), spoken=True)
    conv.eos_sent(0, 1.0)
    feed(conv, (response_created("resp_1"), 1.25), (audio("resp_1"), 1.5), (done("resp_1"), 1.75))
    conv.end_turn(0)
    # between turns the server starts a response of its own (the rest of a split utterance)
    feed(conv, (response_created("resp_x"), 2.0))
    conv.begin_turn(record(1), spoken=True)
    assert feed(conv, (done("resp_x", "cancelled", type="cancelled", reason="turn_detected"),
                       2.25)) == []
    conv.eos_sent(1, 3.0)
    feed(conv, (response_created("resp_2"), 3.25), (audio("resp_2"), 3.5), (done("resp_2"), 3.75))
    (ended,) = conv.end_turn(1)
    assert isinstance(ended, TurnEnded)
    assert (ended.record.response_id, ended.record.premature, ended.record.ttfb_ms) == (
        "resp_2", False, 500.0)


def test_an_idle_timeout_response_is_noted_and_taken_by_no_turn() -> None:
    conv = ready()
    conv.begin_turn(record(), spoken=True)  # its speech has not reached the server yet
    actions = feed(conv, (ev(EventType.INPUT_AUDIO_TIMEOUT, audio_start_ms=4000,
                             audio_end_ms=5000, item_id="item_i"), 0.25),
                   (ev(EventType.INPUT_AUDIO_COMMITTED, item_id="item_i"), 0.25),
                   (response_created("resp_idle"), 0.25), (audio("resp_idle"), 0.5))
    assert actions == [Failed("turn", "idle_timeout", "timeout_triggered", "benign",
                              "input_audio_buffer.timeout_triggered (1000 ms of input without "
                              "speech): the server answers on its own (idle_timeout_ms)")]
    feed(conv, (ev(EventType.SPEECH_STARTED), 0.625),
         (done("resp_idle", "cancelled", type="cancelled", reason="turn_detected"), 0.625))
    conv.eos_sent(0, 1.0)
    feed(conv, (ev(EventType.SPEECH_STOPPED), 1.25), (response_created("resp_1"), 1.25),
         (audio("resp_1"), 1.5), (done("resp_1"), 1.75))
    (ended,) = conv.end_turn(0)
    assert isinstance(ended, TurnEnded)
    assert (ended.record.response_id, ended.record.premature, ended.record.ttfb_ms) == (
        "resp_1", False, 500.0)
