"""The lean client over real loopback sockets: handshake refusals, closes, TLS, backpressure.

The peers here are trio-websocket servers (a third-party implementation) and the simulator.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import trio
import trio_websocket

from rtbench.client.transport import CloseReason, HandshakeFailed, open_connection
from rtbench.config.scenario import Target
from rtbench.sim import Profile

from conftest import running_sim


async def test_refused_handshake_keeps_status_and_body_code() -> None:
    async with running_sim(Profile(), api_key="right") as server:
        target = Target(name="t", url=f"ws://127.0.0.1:{server.port}/v1/realtime?model=m",
                        headers=(("Authorization", "Bearer wrong"),))
        with pytest.raises(HandshakeFailed) as info:
            async with open_connection(target, 5.0):
                pass
    assert info.value.status == 401 and info.value.code == "invalid_api_key"
    assert "Incorrect API key" in info.value.message


async def test_nothing_listening_is_a_connect_error() -> None:
    with pytest.raises(HandshakeFailed) as info:
        async with open_connection(Target(name="t", url="ws://127.0.0.1:9/x"), 2.0):
            pass
    assert info.value.code == "connect_error"


async def test_messages_are_stamped_and_the_servers_close_reason_returned() -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        for i in range(3):
            await ws.send_message(f'{{"n":{i}}}')
        await ws.send_message(b"\x01\x02")
        await ws.aclose(4001, "bye now")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
        got: list[tuple[str | bytes, float]] = []
        target = Target(name="t", url=f"ws://127.0.0.1:{server.port}/")
        async with open_connection(target, 5.0) as ws:
            t_before = trio.current_time()
            reason = await ws.receive_into(lambda m, t: got.append((m, t)))
        nursery.cancel_scope.cancel()
    assert [m for m, _ in got] == ['{"n":0}', '{"n":1}', '{"n":2}', b"\x01\x02"]
    assert all(t >= t_before for _, t in got)
    assert reason == CloseReason(4001, "bye now")


async def test_sends_that_back_up_complete_in_order_later() -> None:
    """A server that does not read fills the socket buffers: sends queue, never block, and
    each on_sent tells the real completion time once the server drains them."""
    release = trio.Event()
    received: list[str] = []

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        for _ in range(200):
            received.append(str(await ws.get_message()))

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
        target = Target(name="t", url=f"ws://127.0.0.1:{server.port}/")
        done: list[tuple[int, float]] = []
        async with open_connection(target, 5.0) as ws:
            t_sent = trio.current_time()
            for i in range(200):
                ws.send_text(f"{i:05d}" + "x" * 65_536,
                             lambda t, i=i: done.append((i, t)))  # type: ignore[misc]
            immediately = len(done)
            await trio.sleep(0.2)
            release.set()
            with trio.fail_after(10):
                while len(done) < 200:
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert immediately < 200                        # some sends had to wait...
    assert [i for i, _ in done] == list(range(200))  # ...and completed in order
    assert done[-1][1] >= t_sent + 0.2              # at their real completion time
    assert [r[:5] for r in received] == [f"{i:05d}" for i in range(200)]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
async def test_wss_uses_tls_and_verifies_the_certificate(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(await ws.get_message())  # echo

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0,
                                     server_ctx)
        target = Target(name="t", url=f"wss://127.0.0.1:{server.port}/")
        got: list[str | bytes] = []
        async with open_connection(target, 5.0, ssl_context=trusting) as ws:
            ws.send_text('{"type":"ping"}')
            with trio.move_on_after(5):
                async def read() -> None:
                    await ws.receive_into(lambda m, t: got.append(m))
                async with trio.open_nursery() as inner:
                    inner.start_soon(read)
                    while not got:
                        await trio.sleep(0.01)
                    inner.cancel_scope.cancel()
        # The system's default context does not trust a self-signed certificate.
        with pytest.raises(HandshakeFailed) as info:
            async with open_connection(target, 5.0):
                pass
        nursery.cancel_scope.cancel()
    assert got == ['{"type":"ping"}']
    assert info.value.code == "tls_error"
