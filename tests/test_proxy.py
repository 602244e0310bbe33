"""Proxies: which one the environment and the settings choose, and runs through a real one.

The forward proxy is Debian's tinyproxy, started per test on a free loopback port with its
config and log in tmp_path (tinyproxy cannot listen on port 0: a port is picked by binding a
socket first). Tests needing it skip when the binary is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from rtbench.client.transport import open_connection
from rtbench.config.proxies import display_proxy, parse_proxy, proxy_for
from rtbench.config.scenario import ConfigError, Target
from rtbench.config.secrets import Redactor
from rtbench.config.targets import load_targets, resolve
from rtbench.ws.tunnel import connect_request, parse_status

from test_cli import rtbench

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
PASSWORD = "pr0xy-s3cret-Pw"


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none leak in from the machine."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


# -- choosing the proxy ----------------------------------------------------------------------


@pytest.mark.parametrize(("env", "url", "expected"), [
    ({"HTTPS_PROXY": "http://p:1"}, "wss://api.example.com/x", "http://p:1"),
    ({"HTTPS_PROXY": "http://p:1"}, "ws://127.0.0.1:9/x", None),  # ws:// wants HTTP_PROXY
    ({"HTTP_PROXY": "http://p:2"}, "ws://127.0.0.1:9/x", "http://p:2"),
    ({"ALL_PROXY": "http://p:3"}, "wss://api.example.com/x", "http://p:3"),
    ({"HTTPS_PROXY": "p:4"}, "wss://api.example.com/x", "http://p:4"),  # bare host:port
    ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"}, "wss://a.example.com/",
     "http://low:1"),
    # loopback is proxied unless NO_PROXY names it (as httpx does)
    ({"HTTPS_PROXY": "http://p:1"}, "wss://127.0.0.1:9/x", "http://p:1"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "localhost,127.0.0.1"}, "wss://127.0.0.1:9/",
     None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "wss://api.example.com/", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "wss://api.example.com/", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "wss://badexample.com/",
     "http://p:1"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "wss://api.example.com/", None),
])
def test_the_environment_chooses_as_httpx_does(monkeypatch: pytest.MonkeyPatch,
                                               env: dict[str, str], url: str,
                                               expected: str | None) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert proxy_for(url, None, "t") == expected


def test_a_setting_overrides_the_environment_and_none_disables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_for("wss://a.example.com/", "http://mine:8080", "t") == "http://mine:8080"
    monkeypatch.delenv("NO_PROXY")
    assert proxy_for("wss://a.example.com/", "none", "t") is None
    assert proxy_for("wss://a.example.com/", "", "t") is None


@pytest.mark.parametrize("url", [f"socks5://u:{PASSWORD}@p:1080", f"https://u:{PASSWORD}@p:1",
                                 f"http://u:{PASSWORD}@p:1/path", "http://p:bad"])
def test_an_unusable_proxy_is_a_config_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        proxy_for("wss://a.example.com/", url, "--proxy")
    assert PASSWORD not in str(err.value) and "--proxy" in str(err.value)


def test_an_unusable_environment_proxy_says_how_to_ignore_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"socks5h://u:{PASSWORD}@p:1080")
    with pytest.raises(ConfigError, match=r"\(from the environment\).*--proxy none") as err:
        proxy_for("wss://a.example.com/", None, "target a")
    assert PASSWORD not in str(err.value)
    assert proxy_for("wss://a.example.com/", "none", "--proxy") is None


def test_the_targets_file_proxy_reaches_the_target_and_the_redactor(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")
    f = tmp_path / "targets.toml"
    f.write_text('[[target]]\nname = "a"\nprovider = "openai"\nmodel = "m"\nauth = "none"\n'
                 f'proxy = "http://alice:{PASSWORD}@proxy.corp:3128"\n'
                 '[[target]]\nname = "b"\nprovider = "openai"\nmodel = "m"\nauth = "none"\n'
                 'proxy = ""\n[[target]]\nname = "c"\nprovider = "openai"\nmodel = "m"\n'
                 'auth = "none"\n')
    spec, direct, from_env = load_targets(f)
    assert resolve(direct, {}).proxy is None
    assert resolve(from_env, {}).proxy == "http://env:1"
    target = resolve(spec, {})
    assert target.proxy == f"http://alice:{PASSWORD}@proxy.corp:3128"
    assert PASSWORD not in repr(target)
    assert display_proxy(target.proxy) == "http://proxy.corp:3128"
    basic = parse_proxy(target.proxy, "t").authorization
    assert basic is not None
    text = Redactor([target])(f"407 for {basic} with {PASSWORD} at {target.proxy}")
    assert PASSWORD not in text and basic.removeprefix("Basic ") not in text


def test_the_connect_request_and_the_status_line() -> None:
    assert connect_request("::1", 443, "Basic eA==") == (
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic eA==\r\n\r\n")
    assert parse_status(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n") == (
        407, "Proxy Authentication Required")


# -- through tinyproxy -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tinyproxy:
    url: str
    log: Path

    def connects(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "CONNECT 127.0.0.1:" in line]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tinyproxy(folder: Path, basic_auth: str | None = None) -> Iterator[Tinyproxy]:
    binary = shutil.which("tinyproxy")
    if binary is None:
        pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
    port, log = free_port(), folder / "tinyproxy.log"
    conf = folder / "tinyproxy.conf"
    conf.write_text(f'Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile "{log}"\n'
                    "LogLevel Info\nMaxClients 100\nAllow 127.0.0.1\n"
                    + (f"BasicAuth {basic_auth}\n" if basic_auth else ""))
    proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:  # listening once it accepts a connection
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"tinyproxy did not start: {log.read_text() if log.exists() else ''}")
                time.sleep(0.05)
        yield Tinyproxy(f"http://127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    (tmp_path / "proxy").mkdir()
    yield from start_tinyproxy(tmp_path / "proxy")


@pytest.fixture
def auth_proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    (tmp_path / "proxy").mkdir()
    yield from start_tinyproxy(tmp_path / "proxy", f"alice {PASSWORD}")


def run_sim(tmp_path: Path, *args: str, sessions: int = 3) -> subprocess.CompletedProcess[str]:
    return rtbench("--sessions", str(sessions), "--turns", "1", "--results", str(tmp_path / "r"),
                   "--run-id", "run", "--progress", "off", "--no-report",
                   "--sim-first-audio-ms", "200", "--sim-first-audio-p99-ms", "200", *args)


def manifest_proxy(tmp_path: Path) -> str | None:
    (target,) = json.loads((tmp_path / "r" / "run" / "manifest.json").read_text())["targets"]
    return target["proxy"]  # type: ignore[no-any-return]


def errors_of(tmp_path: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "r" / "run" / "errors.parquet")


@pytest.mark.parametrize("how", ["HTTPS_PROXY", "--proxy", "HTTP_PROXY"])
def test_a_run_tunnels_through_the_proxy(tmp_path: Path, tinyproxy: Tinyproxy, how: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    args = [] if how == "HTTP_PROXY" else ["--sim-tls"]  # ws:// uses the HTTP proxy
    if how.startswith("--"):
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # overridden by the flag
        args += ["--proxy", tinyproxy.url]
    else:
        monkeypatch.setenv(how, tinyproxy.url)
    proc = run_sim(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert len(errors_of(tmp_path)) == 0
    assert len(tinyproxy.connects()) == 3  # one tunnel per session
    assert manifest_proxy(tmp_path) == tinyproxy.url


def test_credentials_in_the_proxy_url_work_and_are_never_written(
        tmp_path: Path, auth_proxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch) -> None:
    with_creds = auth_proxy.url.replace("http://", f"http://alice:{PASSWORD}@")
    monkeypatch.setenv("HTTPS_PROXY", with_creds)
    proc = run_sim(tmp_path, "--sim-tls")
    assert proc.returncode == 0, proc.stderr
    assert len(errors_of(tmp_path)) == 0 and len(auth_proxy.connects()) == 3
    proc = run_sim(tmp_path, "--sim-tls", "--proxy", with_creds, "--run-id", "flag")
    assert proc.returncode == 0, proc.stderr
    assert manifest_proxy(tmp_path) == auth_proxy.url
    outputs = proc.stdout + proc.stderr
    for path in (tmp_path / "r").rglob("*"):
        if path.is_file():
            outputs += path.read_bytes().decode("latin-1")
    assert "--proxy" in (tmp_path / "r" / "flag" / "manifest.json").read_text()
    assert PASSWORD not in outputs


def test_a_refusing_proxy_is_one_error_row_per_session(tmp_path: Path, auth_proxy: Tinyproxy
                                                       ) -> None:
    wrong = auth_proxy.url.replace("http://", "http://alice:wrong-password@")
    proc = run_sim(tmp_path, "--sim-tls", "--proxy", wrong, sessions=2)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = errors_of(tmp_path)
    assert list(errors["code"]) == ["proxy_refused"] * 2
    # tinyproxy 1.11 answers a CONNECT with bad credentials 401, not 407: either is named
    assert all(re.search(r"HTTP 40[17] ", m) and auth_proxy.url in m for m in errors["message"])
    assert "wrong-password" not in proc.stdout + proc.stderr + errors.to_json()


def test_no_proxy_bypasses_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens: must not be used
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    proc = run_sim(tmp_path, "--sim-tls")
    assert proc.returncode == 0, proc.stderr
    assert manifest_proxy(tmp_path) is None


def test_an_unreachable_proxy_is_a_connect_error_naming_it(tmp_path: Path) -> None:
    proc = run_sim(tmp_path, "--sim-tls", "--proxy", "http://127.0.0.1:9", sessions=1)
    assert "Traceback" not in proc.stderr
    (message,) = errors_of(tmp_path)["message"]
    assert "via proxy http://127.0.0.1:9" in message


# -- the first frames ------------------------------------------------------------------------


async def coalescing_server(stream: trio.SocketStream) -> None:
    """Answers the upgrade and sends its first message in the same write, as the simulator's
    ``session.created`` often arrives: one read of the client holds both."""
    ws = WSConnection(ConnectionType.SERVER)
    while not any(isinstance(e, Request) for e in ws.events()):
        ws.receive_data(await stream.receive_some(65536))
    await stream.send_all(ws.send(AcceptConnection()) + ws.send(TextMessage("first")))
    await trio.sleep_forever()


@pytest.mark.parametrize("through", ["direct", "tunnel"])
async def test_a_message_that_comes_with_the_101_is_kept(through: str, tmp_path: Path) -> None:
    proxies = start_tinyproxy(tmp_path) if through == "tunnel" else (p for p in [None])
    proxy = next(proxies)
    try:
        async with trio.open_nursery() as nursery:
            (listener,) = await nursery.start(
                functools.partial(trio.serve_tcp, coalescing_server, 0, host="127.0.0.1"))
            port = listener.socket.getsockname()[1]
            target = Target(name="t", url=f"ws://127.0.0.1:{port}/",
                            proxy=None if proxy is None else proxy.url)
            got: list[str | bytes] = []
            async with open_connection(target, 5.0) as ws:
                with trio.move_on_after(5) as scope:
                    await ws.receive_into(lambda m, _t: (got.append(m), scope.cancel()))
            nursery.cancel_scope.cancel()
        assert got == ["first"]
    finally:
        proxies.close()
