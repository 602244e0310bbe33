"""``rtbench probe``: find which part of a session set-up makes a target fail.

Built for the seed case (an Azure session that errors with ``server_error`` right after
``session.created``): first the handshake (path, auth, deployment), then a ladder of session
configurations from minimal (text only, no VAD) upward, each tried a few times on fresh
sessions. The first rung that fails names the feature to suspect; every failure keeps its error
codes and ``sess_…`` ids, which is what a support ticket needs.

Each attempt is a small scripted session driving the same sans-IO
:class:`~rtbench.protocol.conversation.Conversation` as the benchmark's sessions (so a probe and
a run read a server the same way) over :func:`~rtbench.client.transport.open_connection`;
nothing here measures latency.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn

import trio

from ..config.scenario import Target
from ..metrics.records import TurnRecord
from ..protocol import SessionConfig, TurnDetection
from ..protocol.adapters import for_dialect
from ..protocol.conversation import (
    Action,
    Conversation,
    Failed,
    ResponseEnded,
    Send,
    SessionCreated,
    SessionUpdated,
    TurnEnded,
)
from ..protocol.models import TRANSCRIPTION_MODEL
from ..ws.client import CloseReason, ConnectionClosed, WsClient
from . import transport
from .workload import ChunkPlan, silence_frame

#: How long a rung waits after ``session.created`` for an error before configuring (the seed
#: case errors "within about a second").
SETTLE_S = 1.5
LONG_INSTRUCTIONS = ("You are a friendly assistant for a travel company. " * 40).strip()
TOOL: dict[str, object] = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}


@dataclass(frozen=True, slots=True)
class Rung:
    """One configuration on the ladder; ``audio``: speak an utterance and wait for server VAD."""

    name: str
    what: str
    session: SessionConfig | None   # None: connect only, no session.update
    audio: bool = False


def ladder(base: SessionConfig) -> list[Rung]:
    """Minimal to full, each rung adding one feature to the one before."""
    text = replace(base, output_modalities=("text",), turn_detection=None,
                   transcription_model=None, noise_reduction=None, tools=(),
                   instructions="Answer in one short sentence.")
    audio_out = replace(text, output_modalities=("audio",))
    vad = replace(audio_out, turn_detection=base.turn_detection or TurnDetection())
    transcribed = replace(vad, transcription_model=TRANSCRIPTION_MODEL)
    denoised = replace(transcribed, noise_reduction="near_field")
    tools = replace(denoised, tools=(TOOL,))
    instructed = replace(tools, instructions=LONG_INSTRUCTIONS)
    return [
        Rung("connect", "handshake + session.created, nothing sent", None),
        Rung("text", "text output, no VAD: one text item + response.create", text),
        Rung("audio_out", "audio output, no VAD", audio_out),
        Rung("server_vad", "server VAD with explicit values, speech streamed", vad, audio=True),
        Rung("transcription", "+ input audio transcription", transcribed, audio=True),
        Rung("noise_reduction", "+ input noise reduction (near_field)", denoised, audio=True),
        Rung("tools", "+ a function tool", tools, audio=True),
        Rung("instructions", "+ long instructions", instructed, audio=True),
    ]


@dataclass(slots=True)
class Attempt:
    ok: bool
    session_id: str | None = None
    phase: str = ""            # where it failed: handshake, created, update, response, closed
    code: str | None = None
    message: str = ""
    status: int | None = None  # HTTP status of a refused handshake


@dataclass(slots=True)
class RungResult:
    rung: Rung
    attempts: list[list[Attempt]] = field(default_factory=list)  # per attempt: tries (retries)

    @property
    def tries(self) -> list[Attempt]:
        return [t for a in self.attempts for t in a]

    @property
    def failure_rate(self) -> float:
        tries = self.tries
        return sum(not t.ok for t in tries) / len(tries) if tries else float("nan")

    @property
    def failure_rate_with_retries(self) -> float:
        """Attempts that still failed after every retry, over attempts."""
        if not self.attempts:
            return float("nan")
        return sum(not a[-1].ok for a in self.attempts) / len(self.attempts)

    @property
    def passed(self) -> bool:
        return all(a[-1].ok for a in self.attempts)

    def codes(self) -> Counter[str]:
        return Counter(f"{t.phase}:{t.code}" for t in self.tries if not t.ok)

    def session_ids(self) -> list[str]:
        return [t.session_id for t in self.tries if not t.ok and t.session_id]


class _Conn:
    """Pull-style stamped messages over the push-style :class:`WsClient` (a probe reads step by
    step)."""

    def __init__(self, ws: WsClient) -> None:
        self.ws = ws
        self._send, self._recv = trio.open_memory_channel[tuple[str | bytes, float] | CloseReason](
            math.inf)

    async def pump(self) -> None:
        reason = await self.ws.receive_into(lambda frame, t: self._send.send_nowait((frame, t)))
        self._send.send_nowait(reason)

    async def get_message(self) -> tuple[str | bytes, float]:
        item = await self._recv.receive()
        if isinstance(item, CloseReason):
            raise ConnectionClosed(item)
        return item

    async def send_message(self, text: str) -> None:
        self.ws.send_text(text)
        await trio.lowlevel.checkpoint()


class _Failed(Exception):
    def __init__(self, phase: str, code: str | None, message: str) -> None:
        super().__init__(message)
        self.phase, self.code, self.message = phase, code, message


#: Error rows of these kinds fail a rung; an unknown event type (benign, counted) does not.
_FAILING_KINDS = frozenset({"protocol", "error_event", "close"})


class _Script:
    """One rung's session, driving the sans-IO :class:`Conversation` over a pulled connection.

    The conversation decides what each event means; this class only waits, sends, and names the
    probe's step (``created``, ``update``, ``response``) in which something failed. A close fails
    in step ``closed`` whatever the step.
    """

    def __init__(self, ws: _Conn, conv: Conversation) -> None:
        self.ws, self.conv = ws, conv

    def _check(self, actions: Sequence[Action], phase: str) -> None:
        for action in actions:
            if isinstance(action, Failed) and action.kind in _FAILING_KINDS:
                raise _Failed("closed" if action.kind == "close" else phase, action.code,
                              action.message)

    async def next_actions(self, phase: str) -> Sequence[Action]:
        """The actions of the next message; raises :class:`_Failed` for a failing one."""
        try:
            frame, t = await self.ws.get_message()
        except ConnectionClosed as exc:
            self.closed(exc.reason)
        self.conv.receive_frame(frame, t)
        actions = self.conv.next_actions()
        self._check(actions, phase)
        return actions

    async def until(self, wanted: type[Action], phase: str) -> Action:
        while True:
            for action in await self.next_actions(phase):
                if isinstance(action, wanted):
                    return action

    async def send(self, send: Send) -> None:
        try:
            await self.ws.send_message(send.wire)
        except ConnectionClosed as exc:
            self.closed(exc.reason)

    def closed(self, reason: CloseReason) -> NoReturn:
        """The connection went: the attempt fails in step ``closed`` with the close code."""
        self._check(self.conv.closed(str(reason.code), reason.reason or reason.name), "closed")
        raise _Failed("closed", str(reason.code), reason.reason or reason.name)


async def _speak(ws: _Conn, plan: ChunkPlan, silence: str,
                 stop: trio.Event) -> None:
    """Stream the utterance, then silence, in real time, until ``stop``."""
    chunk_s = plan.chunk_ms / 1000.0
    t0 = trio.current_time()
    k = 0
    while not stop.is_set():
        await trio.sleep_until(t0 + (k + 1) * chunk_s)
        frame = plan.frames[k] if k < len(plan.frames) else silence
        try:
            await ws.send_message(frame)
        except ConnectionClosed:
            return
        k += 1


async def _respond(script: _Script, target: Target, rung: Rung, plan: ChunkPlan) -> Attempt:
    """One turn (speech for VAD rungs, a typed message otherwise), to its response's end.

    A failure is carried out of the nursery as itself, not wrapped in an exception group.
    """
    conv = script.conv
    record = TurnRecord(target=target.name, region=target.region, model=target.model,
                        session_idx=0, session_id=conv.session_id, turn_idx=0,
                        utterance=plan.utterance.name if rung.audio else "text",
                        chunk_ms=plan.chunk_ms)
    conv.begin_turn(record)
    stop = trio.Event()
    failure: _Failed | None = None
    async with trio.open_nursery() as nursery:
        try:
            if rung.audio:
                nursery.start_soon(_speak, script.ws, plan, silence_frame(plan.chunk_ms), stop)
            else:
                for send in conv.prompt("Say hello."):
                    await script.send(send)
            await script.until(ResponseEnded, "response")
        except _Failed as exc:
            failure = exc
        stop.set()
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    row: Failed | None = None
    for action in conv.end_turn(0):
        if isinstance(action, Failed):
            row = action
        elif isinstance(action, TurnEnded) and action.record.status != "ok":
            return Attempt(False, conv.session_id, "response", action.record.error_code,
                           row.message if row is not None else "")
    return Attempt(True, conv.session_id)


async def _steps(ws: _Conn, conv: Conversation, target: Target, rung: Rung,
                 plan: ChunkPlan) -> Attempt:
    """The scripted session of one rung on an open connection."""
    script = _Script(ws, conv)
    try:
        await script.until(SessionCreated, "created")
        with trio.move_on_after(SETTLE_S):  # an error right after created?
            while True:
                await script.next_actions("created")
        if rung.session is None:
            return Attempt(True, conv.session_id)
        await script.send(conv.configure(rung.session))
        await script.until(SessionUpdated, "update")
        return await _respond(script, target, rung, plan)
    except _Failed as exc:
        return Attempt(False, conv.session_id, exc.phase, exc.code, exc.message)


async def _attempt(target: Target, rung: Rung, plan: ChunkPlan, timeout_s: float) -> Attempt:
    conv = Conversation(for_dialect(target.dialect))
    try:
        with trio.fail_after(timeout_s):
            async with transport.open_connection(target, timeout_s) as client, \
                    trio.open_nursery() as pump:
                ws = _Conn(client)
                pump.start_soon(ws.pump)
                result = await _steps(ws, conv, target, rung, plan)
                pump.cancel_scope.cancel()
            return result
    except transport.HandshakeFailed as exc:
        return Attempt(False, None, "handshake", exc.code or str(exc.status), exc.message,
                       exc.status)
    except trio.TooSlowError:
        return Attempt(False, conv.session_id, "timeout", "probe_timeout",
                       f"no answer within {timeout_s:g} s")


async def run_probe(target: Target, rungs: Sequence[Rung], plan: ChunkPlan, attempts: int,
                    retries: int, timeout_s: float, stop_at_failure: bool = True,
                    on_rung: Callable[[RungResult], None] | None = None) -> list[RungResult]:
    """Climb the ladder; stop after the first rung that fails (unless told otherwise).

    ``on_rung`` gets each rung's result as soon as that rung is done: a rung takes seconds
    (fresh sessions, a settle wait, speech in real time), the whole ladder minutes, and a
    probe that says nothing until the end looks hung.
    """
    results = []
    for rung in rungs:
        result = RungResult(rung)
        for _ in range(attempts):
            tries = []
            for _ in range(retries + 1):
                outcome = await _attempt(target, rung, plan, timeout_s)
                tries.append(outcome)
                if outcome.ok or outcome.phase == "handshake":
                    break
            result.attempts.append(tries)
            if tries[-1].phase == "handshake":
                break  # no session at all: the rest of the ladder cannot run
        results.append(result)
        if on_rung is not None:
            on_rung(result)
        if not result.passed and stop_at_failure:
            break
    return results


HANDSHAKE_ADVICE = {
    "401": "the key or token was refused (check the key variable, or api-version on a GA path)",
    "403": "the key is valid but not allowed to use this model",
    "404": "no such deployment or path (check resource, deployment and protocol)",
    "400": "the deployment's model does not support the realtime operation",
    "429": "connections are being rate limited",
}


def explain(results: Sequence[RungResult]) -> str:
    """One paragraph: where the ladder broke and what to quote to support."""
    failed = next((r for r in results if not r.passed), None)
    if failed is None:
        return f"every rung passed ({len(results)} of them): no set-up step fails"
    tries = failed.tries
    first = next(t for t in tries if not t.ok)
    if first.phase == "handshake":
        hint = HANDSHAKE_ADVICE.get(str(first.status), "")
        status = f"HTTP {first.status} " if first.status else ""
        return (f"the handshake fails: {status}{first.code}: {first.message}"
                + (f" ({hint})" if hint else ""))
    ids = ", ".join(failed.session_ids()[:5]) or "none"
    previous = results[results.index(failed) - 1].rung.name if results.index(failed) else None
    suspect = (f"'{failed.rung.name}' ({failed.rung.what}) fails while '{previous}' passes"
               if previous else f"'{failed.rung.name}' fails")
    codes = ", ".join(f"{c} x{n}" for c, n in failed.codes().most_common())
    return (f"{suspect}: {codes}; failure rate {failed.failure_rate:.0%} per try, "
            f"{failed.failure_rate_with_retries:.0%} after retries; session ids for support: {ids}")
