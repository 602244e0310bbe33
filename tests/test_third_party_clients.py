"""Widely used Realtime client libraries, unmodified, complete turns against the simulator.

Each library talks to a simulator on loopback (``sim_in_thread``: its own trio loop in a
thread, since these clients are asyncio) exactly as it talks to the services: its own
``session.update`` (with its own model string), its own ``response.create`` and its follow-up
events (``conversation.item.retrieve`` after a transcription, …). Every error the library
reports, as an event or in its log, fails the test; every frame the simulator sends is also
validated by the referee (conftest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from rtbench.sim import Dist, Profile

from simdrive import tone
from simthread import sim_in_thread

KEY = "sk-sim-third-party"
PROFILE = Profile(first_audio=Dist(200.0), response_audio_ms=300, realtime_factor=4.0,
                  transcription_delay=Dist(50.0))
TRANSCRIPT = "What is the weather like tomorrow?"
TIMEOUT_S = 15
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
       "silence_duration_ms": 200, "create_response": True, "interrupt_response": True}

pytestmark = pytest.mark.timeout(60)


def _speech() -> bytes:
    """600 ms of tone then 600 ms of silence, PCM16 24 kHz: one VAD turn."""
    return np.concatenate([tone(600), np.zeros(24 * 600, dtype=np.int16)]).tobytes()


def _chunks(pcm: bytes, ms: int = 100) -> list[bytes]:
    size = 2 * 24 * ms
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]


class ErrorLog(logging.Handler):
    """Collects the records at ERROR and above that a library logs during a test."""

    def __init__(self, *names: str) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []
        self.loggers = [logging.getLogger(n) for n in names]

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")

    def __enter__(self) -> ErrorLog:
        for lg in self.loggers:
            lg.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for lg in self.loggers:
            lg.removeHandler(self)


# -- OpenAI Agents SDK (openai-agents, agents.realtime) -------------------------------------

agents_realtime = pytest.importorskip("agents.realtime")
agents_openai = pytest.importorskip("agents.realtime.openai_realtime")
agents_model_inputs = pytest.importorskip("agents.realtime.model_inputs")


def _agents_urls(port: int, azure: bool) -> dict[str, Any]:
    """The model config an app passes for OpenAI, or for an Azure GA v1 deployment."""
    if azure:
        return {"url": f"ws://127.0.0.1:{port}/openai/v1/realtime?model=my-realtime-deployment",
                "headers": {"api-key": KEY}}
    return {"url": f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime-2", "api_key": KEY}


@dataclass
class Seen:
    """What one client session has seen so far: its errors, history and raw server events."""

    errors: list[str] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    def answers(self) -> int:
        return sum(getattr(i, "role", None) == "assistant" and getattr(i, "status", None) ==
                   "completed" for i in self.history)

    def transcribed(self) -> bool:
        return any(getattr(c, "transcript", None) == TRANSCRIPT for i in self.history
                   if getattr(i, "role", None) == "user" for c in i.content)

    async def until(self, done: Callable[[Seen], bool]) -> None:
        while not done(self):
            await asyncio.sleep(0.02)


async def _agents_run(port: int, azure: bool, settings: dict[str, Any],
                      script: Callable[[Any, Seen], Awaitable[None]]) -> Seen:
    """One RealtimeSession reading its events while ``script(session, seen)`` runs."""
    agent = agents_realtime.RealtimeAgent(name="sim", instructions="Answer briefly.")
    runner = agents_realtime.RealtimeRunner(
        agent, model=agents_openai.OpenAIRealtimeWebSocketModel(),
        config={"model_settings": {"model_name": "gpt-realtime-2", **settings},
                "tracing_disabled": True})
    seen = Seen()

    async def read(session: Any) -> None:
        async for event in session:
            if event.type == "error":
                seen.errors.append(repr(event.error))
            elif event.type == "history_updated":
                seen.history = list(event.history)
            elif event.type == "raw_model_event" and event.data.type == "raw_server_event":
                seen.raw.append(event.data.data.get("type"))

    async with asyncio.timeout(TIMEOUT_S):
        session = await runner.run(model_config=_agents_urls(port, azure))
        async with session:
            reader = asyncio.create_task(read(session))
            await script(session, seen)
            reader.cancel()
    return seen


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_agents_sdk_vad_turns(azure: bool) -> None:
    async def script(session: Any, seen: Seen) -> None:
        for turn in (1, 2):
            for chunk in _chunks(_speech()):
                await session.send_audio(chunk)
            await seen.until(lambda s, n=turn: s.answers() >= n and s.transcribed())
        # after a transcription the SDK asks for its current item back (§10.4)
        await seen.until(lambda s: "conversation.item.retrieved" in s.raw)

    settings = {"turn_detection": VAD, "input_audio_transcription": {"model": "gpt-transcribe"}}
    with ErrorLog("openai.agents") as log, sim_in_thread(PROFILE, api_key=KEY) as server:
        seen = asyncio.run(_agents_run(server.port or 0, azure, settings, script))
    assert seen.errors == [] and log.records == [] and "error" not in seen.raw


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_agents_sdk_manual_turns(azure: bool) -> None:
    async def script(session: Any, seen: Seen) -> None:
        await session.send_message("What is the weather like tomorrow?")
        await seen.until(lambda s: s.answers() >= 1)
        await session.send_audio(_speech(), commit=True)
        await session.model.send_event(agents_model_inputs.RealtimeModelSendRawMessage(
            message={"type": "response.create",
                     "other_data": {"response": {"metadata": {"client_event_id": "m-1"}}}}))
        await seen.until(lambda s: s.answers() >= 2)

    with ErrorLog("openai.agents") as log, sim_in_thread(PROFILE, api_key=KEY) as server:
        seen = asyncio.run(_agents_run(server.port or 0, azure, {"turn_detection": None},
                                       script))
    assert seen.errors == [] and log.records == [] and "error" not in seen.raw
    assert seen.raw.count("response.done") == 2
