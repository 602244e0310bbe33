"""The simulator's edge over real loopback: paths, dialects, auth, the beta cut-off, the knee."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing
import trio_websocket

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.scenario import Scenario, Target
from rtbench.protocol import TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, Profile

from conftest import memory_sim, running_sim

KEY = "sk-sim-test"
AZ_PREVIEW = "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-4o-mini-realtime"


async def _open(port: int, path: str, headers: list[tuple[str, str]] | None = None,
                subprotocols: list[str] | None = None, n: int = 2
                ) -> tuple[str | None, list[dict[str, Any]]]:
    """Connect, return the selected subprotocol and the first ``n`` events."""
    with trio.fail_after(5):
        async with trio_websocket.open_websocket_url(
                f"ws://127.0.0.1:{port}{path}",
                extra_headers=[(k.encode(), v.encode()) for k, v in headers or []],
                subprotocols=subprotocols) as ws:
            events = [orjson.loads(await ws.get_message()) for _ in range(n)]
            return ws.subprotocol, events


async def _refused(port: int, path: str, headers: list[tuple[str, str]] | None = None
                   ) -> tuple[int, dict[str, Any]]:
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        await _open(port, path, headers)
    assert info.value.body is not None
    return info.value.status_code, orjson.loads(info.value.body)


@pytest.mark.parametrize(("path", "headers", "subprotocols", "dialect"), [
    ("/v1/realtime?model=gpt-realtime", [("Authorization", f"Bearer {KEY}")], None, "ga"),
    ("/v1/realtime?model=gpt-realtime",
     [("Authorization", f"Bearer {KEY}"), ("OpenAI-Beta", "realtime=v1")], None, "beta"),
    ("/v1/realtime?model=gpt-realtime", None, ["realtime", f"openai-insecure-api-key.{KEY}"],
     "ga"),
    ("/v1/realtime?model=gpt-realtime", None,
     ["realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"], "beta"),
    ("/openai/v1/realtime?model=gpt-realtime", [("api-key", KEY)], None, "ga"),
    (f"/openai/v1/realtime?model=gpt-realtime&api-key={KEY}", None, None, "ga"),
    ("/openai/v1/realtime?model=gpt-realtime", [("Authorization", f"Bearer {KEY}")], None, "ga"),
    (AZ_PREVIEW, [("api-key", KEY)], None, "beta"),
    (f"{AZ_PREVIEW}&api-key={KEY}", None, None, "beta"),
])
async def test_paths_and_auth_variants_pick_the_dialect(
        path: str, headers: list[tuple[str, str]] | None, subprotocols: list[str] | None,
        dialect: str) -> None:
    async with running_sim(Profile(), api_key=KEY) as server:
        selected, events = await _open(server.port, path, headers, subprotocols,
                                       n=1 if dialect == "ga" else 2)
    created = events[0]
    assert created["type"] == "session.created"
    assert created["session"]["id"].startswith("sess_")
    if dialect == "ga":
        assert created["session"]["type"] == "realtime" and "audio" in created["session"]
    else:
        assert "modalities" in created["session"] and events[1]["type"] == "conversation.created"
    assert selected == ("realtime" if subprotocols else None)


async def test_session_created_carries_the_services_defaults() -> None:
    async with running_sim(Profile()) as server:
        _, (ga,) = await _open(server.port, "/v1/realtime?model=gpt-realtime", n=1)
        _, (beta, _) = await _open(server.port, AZ_PREVIEW)
    td = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
          "silence_duration_ms": 200, "create_response": True, "interrupt_response": True}
    audio = ga["session"]["audio"]
    assert audio["input"]["turn_detection"] == {**td, "idle_timeout_ms": None}
    assert audio["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio["output"]["voice"] == "alloy" and ga["session"]["model"] == "gpt-realtime"
    assert beta["session"]["turn_detection"] == td
    assert (beta["session"]["voice"], beta["session"]["input_audio_format"]) == ("alloy", "pcm16")


@pytest.mark.parametrize(("path", "headers", "status", "code"), [
    ("/v1/realtime?model=m", [("Authorization", "Bearer bad-key-123")], 401, "invalid_api_key"),
    ("/v1/realtime?model=m", None, 401, "invalid_api_key"),
    ("/openai/v1/realtime?model=m", [("api-key", "bad-key-123")], 401, "401"),
    (AZ_PREVIEW, None, 401, "401"),
    ("/openai/v1/realtime?model=m&api-version=2025-04-01-preview", [("api-key", KEY)], 401, "401"),
    ("/v1/realtime", [("Authorization", f"Bearer {KEY}")], 400, "missing_model"),
    ("/openai/realtime?deployment=d", [("api-key", KEY)], 404, "404"),
    ("/v2/realtime?model=m", [("Authorization", f"Bearer {KEY}")], 404, "404"),
])
async def test_refusals(path: str, headers: list[tuple[str, str]] | None, status: int,
                        code: str) -> None:
    async with running_sim(Profile(), api_key=KEY) as server:
        got_status, body = await _refused(server.port, path, headers)
        assert server.stats.counters[f"refused_{status}"] == 1
    assert (got_status, body["error"]["code"]) == (status, code)
    assert "bad-key-123" not in orjson.dumps(body).decode()


async def test_openai_beta_cutoff_mode_rejects_beta_shape_with_4000() -> None:
    async with running_sim(Profile(), openai_beta_disabled=True) as server:
        with trio.fail_after(5):
            async with trio_websocket.open_websocket_url(
                    f"ws://127.0.0.1:{server.port}/v1/realtime?model=gpt-realtime",
                    extra_headers=[(b"OpenAI-Beta", b"realtime=v1")]) as ws:
                error = orjson.loads(await ws.get_message())
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ws.get_message()
        assert error["error"]["code"] == "beta_api_shape_disabled"
        assert info.value.reason.code == 4000
        assert info.value.reason.reason == "invalid_request_error.beta_api_shape_disabled"
        # GA on OpenAI and beta on the Azure preview path are unaffected
        _, (ga,) = await _open(server.port, "/v1/realtime?model=gpt-realtime", n=1)
        _, (beta, _) = await _open(server.port, AZ_PREVIEW)
    assert ga["type"] == beta["type"] == "session.created"


async def test_first_audio_rises_with_concurrent_sessions_over_the_knee(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = replace(scenario, utterances=("en_timer",), turns_per_session=1, trailing_silence_ms=300,
                 session=replace(scenario.session,
                                 turn_detection=TurnDetection(silence_duration_ms=200)))
    plans = [plan_chunks(load_utterance(sc.audio_dir / "en_timer.wav"), sc.chunk_ms)]
    profile = Profile(first_audio=Dist(300.0), response_audio_ms=200, realtime_factor=4.0,
                      knee_sessions=2, per_session_over_knee_ms=40.0)
    ttfa = {}
    for sessions in (1, 6):
        # in memory on the mock clock, so the load penalty is asserted exactly
        async with memory_sim(profile) as (_, connect):
            target = Target(name="sim", url="ws://sim.invalid/v1/realtime?model=m")
            store = RunStore(tmp_path, f"n{sessions}", {})
            with trio.fail_after(20):
                await run_sessions(RunPlan(sc, [target], sessions), plans, store, connect=connect)
        turns, _ = store.finalize("complete")
        assert (turns["status"] == "ok").all()
        ttfa[sessions] = turns["ttfa_ms"].tolist()
    assert ttfa[1] == pytest.approx([300.0], abs=1e-3)
    # all six active when each response starts: 4 over the knee, 40 ms each
    assert ttfa[6] == pytest.approx([300.0 + 4 * 40] * 6, abs=1e-3)
