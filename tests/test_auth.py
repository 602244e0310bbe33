"""Credential providers: Entra token caching and refresh with a fake credential and clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trio

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.client.workload import load_utterance, plan_chunks
from rtbench.config.auth import ApiKey, AuthError, EntraToken
from rtbench.config.scenario import Target, load_scenario
from rtbench.protocol import TurnDetection
from rtbench.results.store import RunStore
from rtbench.sim import Dist, Profile

from conftest import DEFAULT_SCENARIO, running_sim


@dataclass
class Token:
    token: str
    expires_on: int


class FakeCredential:
    """Hands out tok-1, tok-2, ... each valid ``lifetime_s`` from the fake clock's now."""

    def __init__(self, clock: list[float], lifetime_s: int = 3600) -> None:
        self.clock = clock
        self.lifetime_s = lifetime_s
        self.calls: list[tuple[str, ...]] = []
        self.fail = False

    def get_token(self, *scopes: str) -> Token:
        self.calls.append(scopes)
        if self.fail:
            raise RuntimeError("AADSTS700016: application not found\nmore detail")
        return Token(f"tok-{len(self.calls)}", int(self.clock[0]) + self.lifetime_s)


async def test_token_is_cached_until_the_refresh_margin_then_refreshed() -> None:
    now = [1_000_000.0]
    cred = FakeCredential(now)
    auth = EntraToken(cred, "scope/.default", margin_s=300, clock=lambda: now[0])
    assert await auth.headers() == (("Authorization", "Bearer tok-1"),)
    now[0] += 3600 - 301           # still more than the margin left: cached
    assert await auth.headers() == (("Authorization", "Bearer tok-1"),)
    now[0] += 2                    # inside the margin: fetch a new one
    assert await auth.headers() == (("Authorization", "Bearer tok-2"),)
    assert cred.calls == [("scope/.default",), ("scope/.default",)]
    assert auth.fetches == 2


async def test_many_sessions_connecting_at_once_fetch_one_token() -> None:
    now = [0.0]
    cred = FakeCredential(now)
    auth = EntraToken(cred, "s", clock=lambda: now[0])
    got: list[object] = []

    async def connect() -> None:
        got.append(await auth.headers())

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(connect)
    assert len(cred.calls) == 1 and len(got) == 20 and len(set(got)) == 1


async def test_credential_failure_is_one_line_and_retried_next_time() -> None:
    now = [0.0]
    cred = FakeCredential(now)
    cred.fail = True
    auth = EntraToken(cred, "s", clock=lambda: now[0])
    with pytest.raises(AuthError, match="cannot get a Microsoft Entra token for s: RuntimeError: "
                                        "AADSTS700016") as info:
        await auth.headers()
    assert "\n" not in str(info.value)
    cred.fail = False
    assert await auth.headers() == (("Authorization", "Bearer tok-2"),)


async def test_api_key_headers_and_redacted_repr() -> None:
    key = ApiKey("s3cr3t", header="api-key", source="AZURE_OPENAI_API_KEY")
    assert await key.headers() == (("api-key", "s3cr3t"),)
    bearer = ApiKey("s3cr3t", header="Authorization", source="OPENAI_API_KEY")
    assert await bearer.headers() == (("Authorization", "Bearer s3cr3t"),)
    for obj in (key, bearer):
        assert "s3cr3t" not in repr(obj) and "s3cr3t" not in obj.describe()
    with pytest.raises(ValueError):
        ApiKey("x", header="X-Key", source="V")


async def test_sessions_get_entra_tokens_at_connect_time_over_real_sockets(tmp_path: Path) -> None:
    """A token-requiring simulator accepts the Bearer token; a refreshed token is used by the
    sessions that connect after the refresh (the simulator here accepts only tok-2)."""
    sc = replace(load_scenario(DEFAULT_SCENARIO), turns_per_session=1, trailing_silence_ms=300,
                 think_time_ms=0)
    sc = replace(sc, session=replace(sc.session, turn_detection=TurnDetection(silence_duration_ms=200)))
    now = [0.0]
    cred = FakeCredential(now, lifetime_s=600)
    auth = EntraToken(cred, "s", margin_s=300, clock=lambda: now[0])
    async with running_sim(Profile(first_audio=Dist(100.0), response_audio_ms=200),
                           api_key="tok-2") as server:
        url = f"ws://127.0.0.1:{server.port}/openai/v1/realtime?model=d"
        target = Target(name="entra", url=url, provider="azure", auth=auth)
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(20):
            plans = [plan_chunks(load_utterance(sc.audio_dir / f"{n}.wav"), sc.chunk_ms)
                     for n in sc.utterances[:1]]
            await run_sessions(RunPlan(sc, [target], 2), plans, store)   # tok-1: refused
            now[0] += 301                                                # inside the margin
            await run_sessions(RunPlan(sc, [target], 2), plans, store)   # tok-2: accepted
    turns, errors = store.finalize("complete")
    assert cred.calls == [("s",), ("s",)]
    assert list(errors["code"]) == ["401", "401"]
    assert len(turns) == 2 and (turns["status"] == "ok").all()
    assert "tok-" not in errors.to_json() + turns.to_json()


async def test_a_hung_credential_is_a_connect_timeout_not_a_hang(tmp_path: Path) -> None:
    release = threading.Event()

    class Hung:
        def get_token(self, *scopes: str) -> Token:
            release.wait(10)
            return Token("late", 0)

    sc = replace(load_scenario(DEFAULT_SCENARIO), turns_per_session=1, connect_timeout_s=0.3)
    target = Target(name="hung", url="ws://127.0.0.1:9/v1/realtime?model=m",
                    auth=EntraToken(Hung(), "s"))
    store = RunStore(tmp_path, "run", {})
    try:
        with trio.fail_after(5):
            await run_sessions(RunPlan(sc, [target], 1), [], store)
    finally:
        release.set()
    _, errors = store.finalize("complete")
    assert list(errors["code"]) == ["auth_timeout"]
    assert errors.loc[0, "message"] == "no credentials within 0.3 s"
