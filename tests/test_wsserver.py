"""The simulator's lean WebSocket server, driven by a third-party client (trio-websocket)."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio_websocket

from rtbench.sim import Profile

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
