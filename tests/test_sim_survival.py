"""The simulator survives any client (it also runs as a shared pod): a malformed event fails
that event, a flooding client cannot starve the others, idle sockets cannot crowd good clients
out, and its own bad configuration is one line before it listens.

Rules: in-process simulator on 127.0.0.1, port 0 (``conftest.running_sim``); clients are
trio-websocket (an independent implementation) or raw sockets; every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from rtbench.protocol import Dialect, SessionConfig, SessionUpdateRejected, session_to_wire
from rtbench.protocol.dialect import session_from_wire
from rtbench.sim import Profile

from conftest import REPO, running_sim

BAD_UPDATES: list[dict[str, Any]] = [
    {"type": "realtime", "audio": {"input": 5}},
    {"type": "realtime", "audio": {"output": {"speed": "fast"}}},
    {"type": "realtime", "tools": 5},
    {"type": "realtime", "audio": {"input": {"format": {"type": ["audio/pcm"]}}}},
    {"type": "realtime", "audio": {"input": {"turn_detection": {
        "type": "server_vad", "silence_duration_ms": 1e300}}}},
    {"type": "realtime", "output_modalities": [[1]]},
    {"type": "realtime", "instructions": {"a": 1}},
    {"type": "realtime", "audio": 5},
    {"type": "realtime", "audio": {"output": {"voice": 7}}},
]


async def _events_until(ws: trio_websocket.WebSocketConnection, wanted: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        event = json.loads(await ws.get_message())
        seen.append(event)
        if event["type"] == wanted:
            return seen


async def _healthy_session(port: int) -> None:
    """A fresh connection still gets session.created and a clean session.updated."""
    async with trio_websocket.open_websocket_url(
            f"ws://127.0.0.1:{port}/v1/realtime?model=m") as ws:
        await _events_until(ws, "session.created")
        await ws.send_message(json.dumps({"type": "session.update",
                                          "session": {"type": "realtime", "instructions": "hi"}}))
        await _events_until(ws, "session.updated")


@pytest.mark.parametrize("session", BAD_UPDATES, ids=[json.dumps(u)[:40] for u in BAD_UPDATES])
async def test_a_malformed_update_fails_that_event_not_the_server(session: dict[str, Any]) -> None:
    with trio.fail_after(20):
        async with running_sim(Profile()) as server:
            async with trio_websocket.open_websocket_url(
                    f"ws://127.0.0.1:{server.port}/v1/realtime?model=m") as ws:
                await _events_until(ws, "session.created")
                await ws.send_message(json.dumps({"type": "session.update", "session": session}))
                try:   # an error event for the update, or (when the reply is what breaks) 1011
                    seen = await _events_until(ws, "error")
                    assert "session.updated" not in [e["type"] for e in seen]
                except trio_websocket.ConnectionClosed as closed:
                    assert closed.reason.code == 1011
            await _healthy_session(server.port)           # the server, and others, go on
            counted = server.stats.counters    # at most this one connection's event failed
            assert counted["event_errors"] + counted["connection_errors"] <= 1


async def test_a_flooding_client_does_not_starve_the_others() -> None:
    chunk = json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA" * 16000})
    with trio.fail_after(60):
        async with running_sim(Profile()) as server, trio_websocket.open_websocket_url(
                f"ws://127.0.0.1:{server.port}/v1/realtime?model=m") as flood:
            await _events_until(flood, "session.created")

            async def pour() -> None:
                for _ in range(2000):          # 128 MB, as fast as the socket takes it
                    await flood.send_message(chunk)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pour)
                await trio.sleep(0.5)           # the flood is under way
                with trio.fail_after(10):       # a good client is still served meanwhile
                    await _healthy_session(server.port)
                nursery.cancel_scope.cancel()


async def test_past_the_connection_cap_a_client_gets_503_and_idle_sockets_time_out() -> None:
    with trio.fail_after(30):
        async with running_sim(Profile(), max_connections=2, handshake_timeout_s=1.0) as server:
            idle = [await trio.open_tcp_stream("127.0.0.1", server.port) for _ in range(2)]
            await trio.sleep(0.2)
            extra = await trio.open_tcp_stream("127.0.0.1", server.port)
            answer = await extra.receive_some(4096)
            assert answer.startswith(b"HTTP/1.1 503") and b"server_busy" in answer
            await extra.aclose()
            assert server.stats.counters["over_capacity"] == 1
            for sock in idle:                       # never sent a request: closed after 1 s
                assert await sock.receive_some(4096) == b""
                await sock.aclose()
            await _healthy_session(server.port)


@pytest.mark.parametrize("argv", [
    ["serve", "--port", "0", "--stats-file", "/nonexistent-dir/stats.json"],
    ["--sessions", "1", "--sim-stats-file", "/nonexistent-dir/stats.json"],
], ids=["serve", "embedded"])
def test_a_stats_file_in_a_missing_folder_is_one_line_before_listening(
        argv: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rtbench", *argv, "--results", str(tmp_path)]
                          if argv[0] != "serve" else [sys.executable, "-m", "rtbench", *argv],
                          cwd=REPO, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the folder /nonexistent-dir does not exist" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "listening" not in proc.stdout
    assert not list(tmp_path.iterdir())      # nothing ran, no results directory


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
_GA_KEYS = ["type", "instructions", "tools", "tool_choice", "output_modalities",
            "max_output_tokens", "audio", "model"]
_GA_AUDIO = st.fixed_dictionaries({}, optional={
    "input": st.fixed_dictionaries({}, optional={k: _JSON for k in (
        "format", "turn_detection", "transcription", "noise_reduction")}) | _JSON,
    "output": st.fixed_dictionaries({}, optional={k: _JSON for k in ("format", "voice", "speed")})
    | _JSON})
_BETA_KEYS = ["modalities", "instructions", "voice", "temperature", "speed", "tools",
              "input_audio_format", "output_audio_format", "turn_detection",
              "input_audio_transcription", "max_response_output_tokens"]


@settings(max_examples=300, deadline=None)
@given(ga=st.fixed_dictionaries({"type": st.just("realtime")},
                                optional={**{k: _JSON for k in _GA_KEYS[1:]}, "audio": _GA_AUDIO}),
       beta=st.fixed_dictionaries({}, optional={k: _JSON for k in _BETA_KEYS}))
def test_any_session_field_values_are_applied_or_rejected_never_raised(
        ga: dict[str, Any], beta: dict[str, Any]) -> None:
    """The sans-IO rule under the server's guard: every value is taken or refused as the
    service refuses it (SessionUpdateRejected), and what is taken still encodes."""
    for dialect, raw in ((Dialect.GA, ga), (Dialect.BETA, beta)):
        try:
            cfg = session_from_wire(raw, dialect, SessionConfig())
        except SessionUpdateRejected:
            continue
        json.dumps(session_to_wire(cfg, dialect), allow_nan=False)
