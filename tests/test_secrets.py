"""Secrets never reach what rtbench writes or prints: the redactor, and a hostile target that
quotes the credential it refuses (localhost only, port 0)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtbench.config.auth import ApiKey
from rtbench.config.scenario import Target
from rtbench.config.secrets import MASK, Redactor, url_secrets

from conftest import REPO

KEY = "sk-rtbench-PLANTED-key-8c1d"
HEADER_SECRET = "apim-PLANTED-sub-4e2f"
QUERY_SECRET = "sig-PLANTED-query-7a9b"


def test_url_secrets_are_the_credential_parameters_and_the_password() -> None:
    url = "wss://u:pw-PLANTED@h/v1?model=m&api-key=K1-long&SIG=s2-long&deployment=d"
    assert sorted(url_secrets(url)) == ["K1-long", "pw-PLANTED", "s2-long"]


def test_every_configured_secret_is_masked_wherever_it_appears() -> None:
    target = Target("t", f"wss://h/v1?model=m&sig={QUERY_SECRET}",
                    headers=(("Ocp-Apim-Subscription-Key", HEADER_SECRET),),
                    auth=ApiKey(KEY, header="Authorization", source="KEY_ENV"))
    redact = Redactor([target])
    text = f"Incorrect API key provided: Bearer {KEY}; sub {HEADER_SECRET}; q {QUERY_SECRET}"
    out = redact(text)
    assert KEY not in out and HEADER_SECRET not in out and QUERY_SECRET not in out
    assert out.count(MASK) == 3
    assert redact("wss://x/y?model=m&api-key=unknown-long-key") == f"wss://x/y?model=m&api-key={MASK}"


def test_the_recorded_command_line_masks_headers_and_url_secrets() -> None:
    argv = ["--url", f"wss://h/v1?model=m&api-key={KEY}", "--header", f"X-Sub={HEADER_SECRET}",
            f"--header=Other={HEADER_SECRET}2", "--sessions", "5"]
    out = Redactor().argv(argv)
    assert out == ["--url", f"wss://h/v1?model=m&api-key={MASK}", "--header", f"X-Sub={MASK}",
                   f"--header=Other={MASK}", "--sessions", "5"]


@pytest.fixture
def echoing_refuser() -> Iterator[int]:
    """Answers every upgrade with 401 and a body quoting every request header it got."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                body = b'{"error": {"code": "invalid_api_key", "message": "Incorrect API key: ' + \
                    request.replace(b"\r\n", b" ").replace(b'"', b"'") + b'"}}'
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("flags", [
    ["--provider", "openai", "--endpoint", "ws://127.0.0.1:{port}", "--model", "m",
     "--header", f"Ocp-Apim-Subscription-Key={HEADER_SECRET}", "--api-key-env", "PLANTED_KEY"],
    ["--url", "ws://127.0.0.1:{port}/v1/realtime?model=m&api-key=" + QUERY_SECRET],
], ids=["key-and-header", "url-query"])
def test_a_server_quoting_the_refused_credentials_leaks_none_of_them(
        tmp_path: Path, echoing_refuser: int, flags: list[str]) -> None:
    argv = [f.format(port=echoing_refuser) for f in flags]
    out = subprocess.run(
        [sys.executable, "-m", "rtbench", *argv, "--sessions", "2", "--turns", "1",
         "--results", str(tmp_path), "--run-id", "run", "--progress", "plain"],
        cwd=REPO, text=True, capture_output=True, timeout=120,
        env={**os.environ, "PLANTED_KEY": KEY})
    assert out.returncode == 3, out.stdout + out.stderr          # nothing measured
    errors = (tmp_path / "run" / "errors.jsonl").read_text()
    assert "invalid_api_key" in errors and "Incorrect API key" in errors
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    for blob in [out.stdout, out.stderr, *(p.read_bytes().decode("utf-8", "replace") for p in written)]:
        for secret in (KEY, HEADER_SECRET, QUERY_SECRET):
            assert secret not in blob
