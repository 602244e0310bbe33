"""The simulator's lean WebSocket server, driven by a third-party client (trio-websocket)."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio_websocket

from rtbench import wsserver
from rtbench.sim import Profile
from rtbench.wsclient import RECEIVE_BYTES

from conftest import running_sim


async def test_a_third_party_client_gets_events_pongs_and_a_clean_close() -> None:
    async with running_sim(Profile()) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=m"
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(url) as ws:
                first = orjson.loads(await ws.get_message())
                await ws.ping(b"are you there")
                await ws.send_message('{"type":"input_audio_buffer.clear"}')
                while orjson.loads(await ws.get_message())["type"] != (
                        "input_audio_buffer.cleared"):
                    pass
            assert ws.closed is not None and ws.closed.code == 1000
    assert first["type"] == "session.created"


async def test_refusals_carry_the_json_body() -> None:
    async with running_sim(Profile()) as server:
        with pytest.raises(trio_websocket.ConnectionRejected) as info:
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/nope"):
                pass
    assert info.value.status_code == 404
    assert orjson.loads(info.value.body or b"{}")["error"]["code"] == "404"


async def test_messages_larger_than_one_read_arrive_whole_and_in_order() -> None:
    """Sockets are watched edge-triggered: what one read leaves buffered must still be read."""
    received: list[str | bytes] = []

    async def handler(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        for _ in range(3):
            received.append(await ws.get_message())
        await ws.send_message("done")

    big = "x" * (5 * RECEIVE_BYTES + 17)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0, None)
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                for message in (big, "small", big[::-1]):
                    await ws.send_message(message)
                assert await ws.get_message() == "done"
        nursery.cancel_scope.cancel()
    assert received == [big, "small", big[::-1]]
