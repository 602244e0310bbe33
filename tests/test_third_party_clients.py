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
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from agents import realtime as agents_realtime
from agents.realtime import model_inputs as agents_model_inputs
from agents.realtime import openai_realtime as agents_openai
from loguru import logger as loguru_logger
from pipecat.frames import frames as pc
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.azure.realtime.llm import AzureRealtimeLLMService
from pipecat.services.openai.realtime import events as pc_events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.workers.runner import WorkerRunner

from rtbench.sim import Dist, Profile

from simdrive import tone
from simthread import sim_in_thread

# These libraries load a great many long-lived objects; out of the collector with them, or
# every later full collection pauses the timing tests longer (see conftest's gc.freeze).
gc.freeze()

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


# -- Pipecat (pipecat-ai[openai]: OpenAIRealtimeLLMService, AzureRealtimeLLMService) --------


class Tap(FrameProcessor):
    """Passes every frame on and keeps it: placed before the service it sees what the service
    sends upstream (errors, transcriptions), after it what it sends downstream (audio)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[pc.Frame] = []

    async def process_frame(self, frame: pc.Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        await self.push_frame(frame, direction)

    def count(self, kind: type[pc.Frame]) -> int:
        return sum(isinstance(f, kind) for f in self.frames)


@dataclass
class Pipecat:
    """One pipeline ``[up, service, down]`` and what its taps saw."""

    service: OpenAIRealtimeLLMService
    worker: PipelineWorker
    up: Tap
    down: Tap

    async def until(self, done: Callable[[Pipecat], bool]) -> None:
        while not done(self):
            await asyncio.sleep(0.02)

    def answers(self) -> int:
        return self.down.count(pc.LLMFullResponseEndFrame)

    def errors(self) -> list[str]:
        return [repr(f) for f in self.up.frames + self.down.frames if isinstance(f, pc.ErrorFrame)]


def _pipecat_service(port: int, azure: bool, manual: bool) -> OpenAIRealtimeLLMService:
    audio_in = pc_events.AudioInput(
        turn_detection=False if manual else pc_events.TurnDetection(silence_duration_ms=200),
        transcription=pc_events.InputAudioTranscription(model="gpt-transcribe"))
    settings = OpenAIRealtimeLLMService.Settings(
        model="gpt-realtime-2", session_properties=pc_events.SessionProperties(
            audio=pc_events.AudioConfiguration(input=audio_in)))
    if azure:  # a deployment name unlike the model string the service sends in session.update
        return AzureRealtimeLLMService(
            api_key=KEY, settings=settings,
            base_url=f"ws://127.0.0.1:{port}/openai/v1/realtime?model=my-realtime-deployment")
    return OpenAIRealtimeLLMService(api_key=KEY, settings=settings,
                                    base_url=f"ws://127.0.0.1:{port}/v1/realtime")


async def _pipecat_run(port: int, azure: bool, manual: bool,
                       script: Callable[[Pipecat], Awaitable[None]]) -> Pipecat:
    """Run the pipeline while ``script`` feeds it; end it with an EndFrame."""
    up, down = Tap(), Tap()
    service = _pipecat_service(port, azure, manual)
    worker = PipelineWorker(Pipeline([up, service, down]), idle_timeout_secs=None,
                            enable_rtvi=False, params=PipelineParams(
                                audio_in_sample_rate=24000, audio_out_sample_rate=24000))
    run = Pipecat(service, worker, up, down)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)

    async def feed() -> None:
        await script(run)
        await worker.queue_frame(pc.EndFrame())

    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(runner.run(), feed())
    return run


def _audio_frames() -> list[pc.Frame]:
    return [pc.InputAudioRawFrame(audio=chunk, sample_rate=24000, num_channels=1)
            for chunk in _chunks(_speech())]


class LoguruErrors:
    """Pipecat logs with loguru: collect what it logs at ERROR and above during a test."""

    def __enter__(self) -> list[str]:
        self.records: list[str] = []
        self.sink = loguru_logger.add(lambda m: self.records.append(str(m)), level="ERROR")
        return self.records

    def __exit__(self, *exc: object) -> None:
        loguru_logger.remove(self.sink)


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_pipecat_vad_turns(azure: bool) -> None:
    retrieved: list[Any] = []

    async def script(run: Pipecat) -> None:
        # the bot greets first (its first context runs the model once the session is set up),
        # so the user speaks into a configured session
        context = LLMContext(messages=[{"role": "user", "content": "Hello!"}])
        await run.worker.queue_frames([pc.LLMContextFrame(context)])
        await run.until(lambda r: r.answers() >= 1)
        for turn in (1, 2):
            await run.worker.queue_frames(_audio_frames())
            await run.until(lambda r, n=turn: r.answers() >= n + 1 and r.up.count(
                pc.TranscriptionFrame) >= n)
        heard = [f for f in run.up.frames if isinstance(f, pc.TranscriptionFrame)]
        assert all(f.text == TRANSCRIPT for f in heard)
        item_id = heard[-1].result.item_id  # the service's own API for a conversation item
        retrieved.append(await asyncio.wait_for(
            run.service.retrieve_conversation_item(item_id), 5))

    with LoguruErrors() as logged, sim_in_thread(PROFILE, api_key=KEY) as server:
        run = asyncio.run(_pipecat_run(server.port or 0, azure, False, script))
    assert run.errors() == [] and logged == []
    assert run.down.count(pc.TTSAudioRawFrame) > 0
    assert retrieved[0].content[0].transcript == TRANSCRIPT


@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
def test_pipecat_manual_turns(azure: bool) -> None:
    async def script(run: Pipecat) -> None:
        context = LLMContext(messages=[{"role": "user", "content": TRANSCRIPT}])
        await run.worker.queue_frames([pc.LLMContextFrame(context)])
        await run.until(lambda r: r.answers() >= 1)
        # push-to-talk: the service commits and asks for a response when the user stops
        await run.worker.queue_frames([pc.UserStartedSpeakingFrame(), *_audio_frames(),
                                       pc.UserStoppedSpeakingFrame()])
        await run.until(lambda r: r.answers() >= 2)

    with LoguruErrors() as logged, sim_in_thread(PROFILE, api_key=KEY) as server:
        run = asyncio.run(_pipecat_run(server.port or 0, azure, True, script))
    assert run.errors() == [] and logged == []
    assert run.down.count(pc.TTSAudioRawFrame) > 0
