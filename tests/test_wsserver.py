"""The simulator's lean WebSocket server, driven by a third-party client (trio-websocket)."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio_websocket

from rtbench.sim import Profile
from rtbench.ws import server as wsserver
from rtbench.ws.client import RECEIVE_BYTES

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


async def test_deliver_hands_messages_to_the_callback_in_order_until_the_client_closes() -> None:
    """With ``deliver`` the hub calls back as it reads; pings are still answered and the
    client's close ends ``deliver``."""
    got: list[str | bytes] = []
    ended = trio.Event()

    async def handler(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.deliver(got.append)
        ended.set()

    big = "z" * (3 * RECEIVE_BYTES)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0, None)
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                for message in ("a", big, "", "b"):
                    await ws.send_message(message)
                await ws.ping(b"still there")  # the pong proves everything before it was read
            await ended.wait()
            assert ws.closed is not None and ws.closed.code == 1000
        nursery.cancel_scope.cancel()
    assert got == ["a", big, "", "b"]


async def test_a_deliver_callback_error_is_raised_in_the_delivering_task() -> None:
    raised: list[BaseException] = []

    def fussy(message: str | bytes) -> None:
        raise ValueError(f"cannot take {message!r}")

    async def handler(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.deliver(fussy)
        except ValueError as exc:
            raised.append(exc)
            await ws.aclose(1011, "internal error")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0, None)
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send_message("x")
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await ws.get_message()
        nursery.cancel_scope.cancel()
    assert [str(e) for e in raised] == ["cannot take 'x'"]
    assert closed.value.reason.code == 1011


async def test_deliver_ends_when_another_task_drops_the_connection() -> None:
    ended = trio.Event()

    async def handler(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        async with trio.open_nursery() as nursery:
            async def drop_soon() -> None:
                await trio.sleep(0.05)
                await ws.abort()
            nursery.start_soon(drop_soon)
            await ws.deliver(lambda m: None)
        ended.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0, None)
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await ws.get_message()
            await ended.wait()
        nursery.cancel_scope.cancel()
