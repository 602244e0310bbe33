"""Shared fixtures: an in-process simulator on 127.0.0.1:0 and the repository's workload."""

from __future__ import annotations

import functools
import gc
import io
import os
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import trio

from rtbench.cli import main as rtbench_main
from rtbench.client import transport
from rtbench.client.transport import Connect
from rtbench.client.workload import load_utterance
from rtbench.config.scenario import Scenario, load_scenario
from rtbench.protocol import Connection, Dialect, Event, Role
from rtbench.sim import Profile, SimConfig, SimServer

from referee import Referee, adapter

# The SDK models behind the referee add ~130k long-lived objects; a full garbage collection
# then stops the process for ~50 ms (vs ~18 ms without), which lands in timing tests as
# latency. Build the adapters now and move everything loaded so far out of the collector.
adapter(Dialect.GA)
adapter(Dialect.BETA)
gc.freeze()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = REPO / "workloads" / "default.toml"


def rtbench_in_process(*args: str, env: dict[str, str] | None = None
                       ) -> subprocess.CompletedProcess[str]:
    """``rtbench ARGS`` run by this process's interpreter (cwd: the repository; ``env``
    replaces the environment meanwhile), its output captured.

    Only for command lines that must fail before anything starts (usage and config errors):
    the same ``main`` a user's ``rtbench`` runs, without an interpreter start and the CLI's
    imports per case (about a second each, more under load).
    """
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.chdir(REPO)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = rtbench_main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["rtbench", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def scenario() -> Scenario:
    return load_scenario(DEFAULT_SCENARIO)


#: Speech kept in the short utterances (from the start of the file).
SHORT_MS = 700
SHORT_UTTERANCES = ("en_timer", "en_weather")


@pytest.fixture(scope="session")
def short_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two utterances cut to their first 0.7 s and ``short.toml`` using them
    (the default scenario with shorter waits).

    For tests of plumbing (records, files, exit codes, processes), where a 2-6 s utterance per
    turn is only waiting; VAD, chunking and TTFA on the full utterances are tested exactly on
    the mock clock (test_exact_timing.py). Made once per test session from the workload's WAVs.
    """
    folder = tmp_path_factory.mktemp("short_audio")
    for name in SHORT_UTTERANCES:
        utt = load_utterance(REPO / "workloads" / "audio" / f"{name}.wav")
        with wave.open(str(folder / f"{name}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(24000)
            out.writeframes(utt.samples[: SHORT_MS * 24].tobytes())
    text = DEFAULT_SCENARIO.read_text()
    head, rest = text.split("[session]", 1)
    head = "".join(line + "\n" for line in head.splitlines()
                   if not line.startswith(("audio_dir", "utterances")))
    head = head.replace("[scenario]\n", '[scenario]\naudio_dir = "."\nutterances = '
                        f"{list(SHORT_UTTERANCES)!r}\n".replace("'", '"'))
    # and shorter waits: 200 ms VAD window, 300 ms trailing silence, 50 ms think time
    text = (head + "[session]" + rest).replace("silence_duration_ms = 500",
                                               "silence_duration_ms = 200")
    text = text.replace("trailing_silence_ms = 1000", "trailing_silence_ms = 300")
    text = text.replace("think_time_ms = 300 ", "think_time_ms = 50 ")
    (folder / "short.toml").write_text(text)
    short = load_scenario(folder / "short.toml")
    assert short.session.turn_detection is not None
    assert (short.trailing_silence_ms, short.think_time_ms,
            short.session.turn_detection.silence_duration_ms) == (300, 50, 200)
    return folder


@pytest.fixture
def short_scenario(short_audio: Path) -> Scenario:
    """The default scenario on the short utterances (see :func:`short_audio`)."""
    return load_scenario(short_audio / "short.toml")


@asynccontextmanager
async def running_sim(profile: Profile, **kw: object) -> AsyncIterator[SimServer]:
    """Start a simulator on an ephemeral loopback port; stop it on exit."""
    options: dict[str, object] = {"seed": 1, **kw}
    server = SimServer(SimConfig(port=0, profile=profile, **options))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def memory_sim(profile: Profile, **kw: object) -> AsyncIterator[tuple[SimServer, Connect]]:
    """A simulator with no socket and the ``connect`` that reaches it in memory.

    Sessions given that ``connect`` run the real client and server code over an in-memory
    stream (``rtbench.ws.memory``); on the ``autojump_clock`` fixture no time passes but the
    latencies the profile injects, so timing is asserted exactly.
    """
    options: dict[str, object] = {"seed": 1, **kw}
    server = SimServer(SimConfig(profile=profile, **options))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        dial = await nursery.start(server.serve_in_memory)
        yield server, functools.partial(transport.open_connection, dial=dial)
        nursery.cancel_scope.cancel()


@contextmanager
def sim_process(*args: str) -> Iterator[int]:
    """``rtbench serve --port 0 ARGS`` in a child process (its own core); yields its port.

    Timing-accuracy tests use this so the simulator's work does not share the client's loop.
    """
    proc = subprocess.Popen([sys.executable, "-m", "rtbench", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def sim() -> Callable[..., object]:
    return running_sim


REFEREE = Referee()


@pytest.fixture(autouse=True)
def referee(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Referee]:
    """Every event a simulator in this process sends is validated with the openai SDK models.

    Wraps the sans-IO ``Connection.send`` (server role), so in-process servers, threads and
    the sans-IO driver are all covered; frames sent raw on purpose (malformed JSON) are not.
    """
    if request.node.get_closest_marker("toy_server_events"):
        yield REFEREE  # the test sends hand-made server events, not the simulator's
        return
    original = Connection.send

    def send(self: Connection, event: Event) -> str | None:
        text = original(self, event)
        if text is not None and self.role is Role.SERVER:
            REFEREE.observe(self.dialect, text)
        return text

    monkeypatch.setattr(Connection, "send", send)
    yield REFEREE
    failures = REFEREE.check()
    assert not failures, "simulator sent events the openai SDK rejects:\n" + "\n".join(
        failures[:20])
