"""wss:// end to end: clean closes over TLS, the simulator's TLS listener, CA trust, the manifest.

Certificates come from :func:`rtbench.sim.tls.self_signed` (a CA made per test module, never a
checked-in key). Close times are bounded by the close timeout, which the old TLS close path
always used up: plumbing, not precision.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio_websocket
import trustme

from rtbench.client import transport
from rtbench.client.transport import HandshakeFailed, open_connection
from rtbench.config.scenario import ConfigError, Target
from rtbench.config.targets import TargetSpec, load_targets, resolve
from rtbench.sim import tls as simtls
from rtbench.ws import client as wsclient
from rtbench.ws import server as wsserver

from conftest import REPO
from test_cli import rtbench


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context for loopback and the CA file a client must trust."""
    ctx, ca_pem = simtls.self_signed()
    ca = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.write_bytes(ca_pem)
    return ctx, ca


def target_for(port: int, secure: bool, ca: Path, name: str = "t") -> Target:
    scheme = "wss" if secure else "ws"
    return Target(name=name, url=f"{scheme}://127.0.0.1:{port}/",
                  ca_file=str(ca) if secure else None)


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_our_close_reaches_a_third_party_server_as_1000_without_the_timeout(
        secure: bool, certs: tuple[ssl.SSLContext, Path]) -> None:
    server_ctx, ca = certs
    codes: list[int] = []
    done = trio.Event()

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            codes.append(exc.reason.code)
        done.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0,
                                     server_ctx if secure else None)
        async with open_connection(target_for(server.port, secure, ca), 5.0) as ws:
            ws.send_text('{"type":"x"}')  # on TLS queued for the flush task, ahead of the close
            t0 = trio.current_time()
        elapsed = trio.current_time() - t0
        with trio.fail_after(5):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert codes == [1000]  # not 1006: the close frame was sent
    assert elapsed < wsclient.CLOSE_WAIT_S  # the server's reply ended the wait, not the timeout


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_our_close_reaches_our_server_as_1000(
        secure: bool, certs: tuple[ssl.SSLContext, Path]) -> None:
    server_ctx, ca = certs
    connections: list[wsserver.WebSocketConnection] = []
    done = trio.Event()

    async def handler(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        connections.append(ws)
        await ws.deliver(lambda m: None)
        done.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0,
                                     server_ctx if secure else None)
        async with open_connection(target_for(server.port, secure, ca), 5.0) as ws:
            ws.send_text('{"type":"x"}')
            t0 = trio.current_time()
        elapsed = trio.current_time() - t0
        with trio.fail_after(5):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert connections[0].closed == wsclient.CloseReason(1000)
    assert elapsed < wsclient.CLOSE_WAIT_S


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_the_servers_close_is_answered_over_tls_too(
        secure: bool, certs: tuple[ssl.SSLContext, Path]) -> None:
    """Our server closes; our client's reply (queued on TLS) must reach it, so the server's
    wait for the reply ends early."""
    server_ctx, ca = certs
    waited: list[float] = []

    async def handler(request: wsserver.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message('{"type":"hello"}')
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:  # someone must read the client's reply
            nursery.start_soon(ws.deliver, lambda m: None)
            await ws.aclose(4001, "bye")
        waited.append(trio.current_time() - t0)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0,
                                     server_ctx if secure else None)
        got: list[str | bytes] = []
        async with open_connection(target_for(server.port, secure, ca), 5.0) as ws:
            reason = await ws.receive_into(lambda m, t: got.append(m))
        with trio.fail_after(5):
            while not waited:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert got == ['{"type":"hello"}'] and reason == wsclient.CloseReason(4001, "bye")
    assert waited[0] < wsserver.CLOSE_WAIT_S
    if secure:
        assert str(ws.tls_version).startswith("TLSv1")
    else:
        assert ws.tls_version is None


async def test_one_tls_context_per_ca_file_not_per_session(
        certs: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    server_ctx, ca = certs
    made: list[object] = []
    real = ssl.create_default_context

    def counting(*args: object, **kw: object) -> ssl.SSLContext:
        made.append(kw.get("cafile"))
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(transport, "_contexts", {})
    monkeypatch.setattr(ssl, "create_default_context", counting)

    async def handler(request: wsserver.WebSocketRequest) -> None:
        await request.accept()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0,
                                     server_ctx)
        for _ in range(3):
            async with open_connection(target_for(server.port, True, ca), 5.0):
                pass
        nursery.cancel_scope.cancel()
    assert made == [str(ca)]


async def test_ssl_cert_file_is_trusted_when_no_ca_file_is_given(
        certs: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    server_ctx, ca = certs
    monkeypatch.setattr(transport, "_contexts", {})
    monkeypatch.setattr(transport, "_tls_versions", {})
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))

    async def handler(request: wsserver.WebSocketRequest) -> None:
        await request.accept()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(wsserver.serve_websocket, handler, "127.0.0.1", 0,
                                     server_ctx)
        async with open_connection(Target(name="env", url=f"wss://127.0.0.1:{server.port}/"),
                                   5.0) as ws:
            assert ws.tls_version is not None
        nursery.cancel_scope.cancel()
    assert transport.tls_versions()["env"].startswith("TLSv1")


async def test_an_unreadable_ca_file_is_a_tls_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("no certificate here")
    with pytest.raises(HandshakeFailed) as info:
        async with open_connection(Target(name="t", url="wss://127.0.0.1:9/", ca_file=str(bad)),
                                   2.0):
            pass
    assert info.value.code == "tls_error" and str(bad) in info.value.message


# -- rtbench serve with TLS -----------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def start_serve(procs: list[subprocess.Popen[str]], *args: str) -> tuple[int, str]:
    """``rtbench serve --port 0 ARGS``: its port and its second (TLS) line."""
    proc = subprocess.Popen([sys.executable, "-m", "rtbench", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    procs.append(proc)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    assert first.startswith("listening on 127.0.0.1:"), first  # unchanged for parsers
    return int(first.rsplit(":", 1)[1]), proc.stdout.readline().strip()


async def first_event(port: int, ca: Path) -> str | bytes:
    target = Target(name="sim", url=f"wss://127.0.0.1:{port}/v1/realtime?model=m",
                    ca_file=str(ca))
    got: list[str | bytes] = []
    with trio.fail_after(10):
        async with open_connection(target, 10.0) as ws, trio.open_nursery() as nursery:
            def first(message: str | bytes, t: float) -> None:
                got.append(message)
                nursery.cancel_scope.cancel()

            nursery.start_soon(ws.receive_into, first)
    return got[0]


async def test_serve_tls_self_signed_writes_the_ca_a_client_trusts(
        tmp_path: Path, serve: list[subprocess.Popen[str]]) -> None:
    ca = tmp_path / "ca.pem"
    port, line = start_serve(serve, "--tls", "self-signed", "--tls-ca-out", str(ca))
    assert "wss://" in line and str(ca) in line
    assert b"PRIVATE KEY" not in ca.read_bytes()
    assert '"session.created"' in str(await first_event(port, ca))


async def test_serve_tls_self_signed_names_its_temporary_ca(
        serve: list[subprocess.Popen[str]]) -> None:
    port, line = start_serve(serve, "--tls", "self-signed")
    ca = Path(line.rsplit(" ", 1)[1])
    assert ca.is_file()
    assert '"session.created"' in str(await first_event(port, ca))


async def test_serve_tls_with_certificate_files(
        tmp_path: Path, serve: list[subprocess.Popen[str]]) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_file)
    port, line = start_serve(serve, "--tls-cert", str(cert), "--tls-key", str(key))
    assert line.startswith("tls: wss://")
    assert '"session.created"' in str(await first_event(port, ca_file))


@pytest.mark.parametrize(("args", "message"), [
    (["--tls-ca-out", "x.pem"], "--tls-ca-out is for --tls self-signed"),
    (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
    (["--tls", "self-signed", "--tls-key", "k.pem"], "not both"),
    (["--tls-cert", "missing.pem", "--tls-key", "missing.pem"], "cannot load them"),
])
def test_serve_tls_flag_errors_are_one_line(args: list[str], message: str) -> None:
    proc = rtbench("serve", "--port", "0", *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_run_with_sim_tls_measures_wss_and_records_the_tls_version(tmp_path: Path) -> None:
    stats = tmp_path / "sim-stats.json"
    proc = rtbench("--sim-tls", "--sessions", "3", "--turns", "1", "--results", str(tmp_path),
                   "--run-id", "tls", "--progress", "off", "--no-report",
                   "--sim-first-audio-ms", "200", "--sim-first-audio-p99-ms", "200",
                   "--sim-stats-file", str(stats))
    assert proc.returncode == 0, proc.stderr
    # every session closed cleanly as the server saw it: 1000, not 1006
    counters = json.loads(stats.read_text())
    assert counters.get("client_close_1000") == 3, counters
    assert not [k for k in counters if k.startswith("client_close_") and k != "client_close_1000"]
    manifest = json.loads((tmp_path / "tls" / "manifest.json").read_text())
    (target,) = manifest["targets"]
    assert target["url"].startswith("wss://127.0.0.1:")
    assert target["tls"].startswith("TLSv1")
    assert manifest["simulator"]["tls"] is True
    assert "PRIVATE KEY" not in json.dumps(manifest)
    turns = json.loads("[" + ",".join((tmp_path / "tls" / "turns.jsonl").read_text().split()) + "]")
    assert [t["status"] for t in turns] == ["ok"] * 3


# -- targets --------------------------------------------------------------------------------


def test_a_targets_file_ca_file_is_relative_to_the_file(tmp_path: Path,
                                                        certs: tuple[ssl.SSLContext, Path]) -> None:
    _, ca = certs
    (tmp_path / "ca.pem").write_bytes(ca.read_bytes())
    f = tmp_path / "targets.toml"
    f.write_text('[[target]]\nname = "a"\nprovider = "openai"\nmodel = "m"\nauth = "none"\n'
                 'endpoint = "wss://127.0.0.1:1"\nca_file = "ca.pem"\n')
    (spec,) = load_targets(f)
    assert spec.ca_file == str(tmp_path / "ca.pem")
    assert resolve(spec, {}).ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(("endpoint", "ca_file", "message"), [
    ("ws://127.0.0.1:1", "ca.pem", "ca_file is for wss:// URLs"),
    ("wss://127.0.0.1:1", "/nonexistent/ca.pem", "is not a file"),
])
def test_ca_file_mistakes_are_config_errors(endpoint: str, ca_file: str, message: str) -> None:
    spec = TargetSpec(provider="openai", model="m", auth="none", endpoint=endpoint,
                      ca_file=ca_file)
    with pytest.raises(ConfigError, match=message):
        resolve(spec, {})


def test_ca_file_flag_goes_with_url_or_a_one_off_target(tmp_path: Path) -> None:
    proc = rtbench("--ca-file", str(tmp_path / "ca.pem"), "--results", str(tmp_path))
    assert proc.returncode == 2 and "--ca-file needs --url or --provider" in proc.stderr
    proc = rtbench("--url", "ws://127.0.0.1:9/", "--ca-file", str(tmp_path / "ca.pem"),
                   "--results", str(tmp_path))
    assert proc.returncode == 2 and "ca_file is for wss:// URLs" in proc.stderr
