"""A turn's error and the close that follows it in the same read are both recorded."""

from __future__ import annotations

import json
from collections.abc import Callable

import trio
import trio.testing

from rtbench.client.session import ClientSession, SessionEnded
from rtbench.config.scenario import Scenario
from rtbench.ws.client import CloseReason
from test_fuzz_frames import make_session


async def turn_ended_by(session: ClientSession, deliver: Callable[[], None]) -> None:
    """Run turn 0 until it waits for its response, then ``deliver`` what the server sent."""
    ended = False

    async def turn() -> None:
        nonlocal ended
        try:
            await session._turn(0, None)
        except SessionEnded:
            ended = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(turn)
        await trio.testing.wait_all_tasks_blocked()
        deliver()
    assert ended


async def test_error_event_then_close_in_one_read_records_both(scenario: Scenario) -> None:
    session, sink = make_session(scenario)
    expired = {"type": "error", "event_id": "e", "error": {
        "type": "invalid_request_error", "code": "session_expired",
        "message": "Your session hit the maximum duration of 60 minutes."}}

    def deliver() -> None:  # one read: the error event, then the close frame
        assert session.handle_frame(json.dumps(expired), 1.0)
        session._closed(CloseReason(1001, "Your session hit the maximum duration of 60 minutes."))

    await turn_ended_by(session, deliver)
    assert sorted((e.phase, e.kind, e.code) for e in sink.errors) == [
        ("turn", "close", "1001"), ("turn", "error_event", "session_expired")]
    assert [t.status for t in sink.turns] == ["error"]


async def test_a_turn_cut_by_a_close_alone_is_one_error(scenario: Scenario) -> None:
    session, sink = make_session(scenario)
    await turn_ended_by(session, lambda: session._closed(CloseReason(1006, None)))
    assert [(e.kind, e.code) for e in sink.errors] == [("close", "1006")]
    assert [t.error_code for t in sink.turns] == ["close_1006"]
