"""The openai SDK's own realtime clients complete a voice turn against the simulator.

The SDK clients are asyncio; pytest runs in trio mode, so each test is a plain function that
runs the simulator in a thread with its own trio loop and the client with ``asyncio.run``.
Every event the simulator sends here is also validated by the referee (conftest).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
from openai import AsyncAzureOpenAI, AsyncOpenAI

from rtbench.sim import Dist, Profile

from simdrive import tone
from simthread import sim_in_thread

KEY = "sk-sim-sdk"
PROFILE = Profile(first_audio=Dist(200.0), response_audio_ms=300, realtime_factor=4.0)
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
       "silence_duration_ms": 200, "create_response": True, "interrupt_response": True}


def _chunks() -> list[str]:
    pcm = np.concatenate([tone(600), np.zeros(24 * 600, dtype=np.int16)])
    size = 24 * 100
    return [base64.b64encode(pcm[i:i + size].tobytes()).decode()
            for i in range(0, len(pcm), size)]


async def _voice_turn(conn: Any, session: dict[str, Any]) -> list[str]:
    """session.update, append audio, read until response.done; the event types seen."""
    seen: list[str] = []
    async with asyncio.timeout(10):
        await conn.session.update(session=session)
        async for event in conn:
            seen.append(event.type)
            if event.type == "session.updated":
                for chunk in _chunks():
                    await conn.input_audio_buffer.append(audio=chunk)
            if event.type == "response.done":
                assert event.response.status == "completed"
                return seen
    raise AssertionError(f"no response.done; got {seen}")


def test_openai_ga_client_completes_a_voice_turn() -> None:
    async def main(port: int) -> list[str]:
        client = AsyncOpenAI(api_key=KEY, websocket_base_url=f"ws://127.0.0.1:{port}/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            return await _voice_turn(conn, {"type": "realtime",
                                            "audio": {"input": {"turn_detection": VAD}}})

    with sim_in_thread(PROFILE, api_key=KEY) as server:
        seen = asyncio.run(main(server.port or 0))
    assert "response.output_audio.delta" in seen and "conversation.item.done" in seen


def test_openai_beta_client_completes_a_voice_turn() -> None:
    async def main(port: int) -> list[str]:
        client = AsyncOpenAI(api_key=KEY, websocket_base_url=f"ws://127.0.0.1:{port}/v1")
        async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
            return await _voice_turn(conn, {"turn_detection": VAD})

    with sim_in_thread(PROFILE, api_key=KEY) as server:
        seen = asyncio.run(main(server.port or 0))
    assert seen[:2] == ["session.created", "conversation.created"]
    assert "response.audio.delta" in seen


def test_azure_client_completes_a_voice_turn_on_the_preview_path() -> None:
    async def main(port: int) -> list[str]:
        client = AsyncAzureOpenAI(azure_endpoint=f"http://127.0.0.1:{port}",
                                  api_version="2025-04-01-preview", api_key=KEY,
                                  websocket_base_url=f"ws://127.0.0.1:{port}/openai")
        async with client.beta.realtime.connect(model="my-realtime-deployment") as conn:
            return await _voice_turn(conn, {"turn_detection": VAD})

    with sim_in_thread(PROFILE, api_key=KEY) as server:
        seen = asyncio.run(main(server.port or 0))
        assert server.stats.counters["refused"] == 0 and server.stats.counters["sessions"] == 1
    assert "response.audio.delta" in seen and "conversation.item.created" in seen


def test_sdk_client_events_of_every_kind_are_answered_on_the_azure_preview_path() -> None:
    """The SDK's own typed client events: a session.update with the client's model string
    (not the deployment's), response.create with metadata, item retrieve/delete, cancel by id."""

    async def main(port: int) -> list[Any]:
        client = AsyncAzureOpenAI(azure_endpoint=f"http://127.0.0.1:{port}",
                                  api_version="2025-04-01-preview", api_key=KEY,
                                  websocket_base_url=f"ws://127.0.0.1:{port}/openai")
        got: list[Any] = []
        async with asyncio.timeout(10), client.beta.realtime.connect(
                model="my-realtime-deployment") as conn:
            await conn.session.update(session={"model": "gpt-4o-realtime-preview",
                                               "turn_detection": None, "voice": "verse"})
            await conn.response.create(response={"metadata": {"client_event_id": "c-1"}})
            async for event in conn:
                got.append(event)
                if event.type == "response.done" and event.response.metadata:
                    item_id = event.response.output[0].id  # type: ignore[index]
                    await conn.conversation.item.retrieve(item_id=item_id)
                elif event.type == "conversation.item.retrieved":
                    await conn.conversation.item.delete(item_id=event.item.id or "")
                elif event.type == "conversation.item.deleted":
                    await conn.response.create(response={"modalities": ["text"]})
                elif event.type == "response.created" and event.response.modalities == ["text"]:
                    await conn.response.cancel(response_id=event.response.id or "")
                elif event.type == "response.done" and event.response.status == "cancelled":
                    return got
        raise AssertionError([e.type for e in got])

    with sim_in_thread(PROFILE, api_key=KEY) as server:
        got = asyncio.run(main(server.port or 0))
    types = [e.type for e in got]
    assert "error" not in types
    updated = next(e for e in got if e.type == "session.updated")
    assert updated.session.voice == "verse" and updated.session.turn_detection is None
    created = next(e for e in got if e.type == "response.created")
    assert created.response.metadata == {"client_event_id": "c-1"}
    assert types.index("conversation.item.retrieved") < types.index("conversation.item.deleted")
