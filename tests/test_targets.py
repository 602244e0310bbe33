"""Targets: URL building for the three service paths, file loading, checks and credentials."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rtbench.config.auth import ApiKey, EntraToken
from rtbench.config.scenario import ConfigError, Scenario
from rtbench.config.targets import TargetSpec, build_url, load_targets, resolve
from rtbench.protocol import Dialect, TurnDetection

from conftest import REPO

ENV = {"OPENAI_API_KEY": "sk-test", "AZURE_OPENAI_API_KEY": "az-test", "MY_KEY": "mine"}


@pytest.mark.parametrize(("spec", "url"), [
    (TargetSpec("openai", model="gpt-realtime"), "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
    (TargetSpec("azure", resource="myres", deployment="gpt-realtime"),
     "wss://myres.openai.azure.com/openai/v1/realtime?model=gpt-realtime"),
    (TargetSpec("azure", resource="myres", model="gpt-realtime"),
     "wss://myres.openai.azure.com/openai/v1/realtime?model=gpt-realtime"),
    (TargetSpec("azure", resource="MyRes", deployment="rt", protocol="preview"),
     "wss://myres.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=rt"),
    (TargetSpec("azure", resource="myres", deployment="rt", protocol="preview",
                api_version="2025-08-28"),
     "wss://myres.openai.azure.com/openai/realtime?api-version=2025-08-28&deployment=rt"),
    (TargetSpec("azure", resource="myres.cognitiveservices.azure.com", deployment="rt"),
     "wss://myres.cognitiveservices.azure.com/openai/v1/realtime?model=rt"),
    (TargetSpec("azure", resource="myres.services.ai.azure.com", deployment="rt"),
     "wss://myres.services.ai.azure.com/openai/v1/realtime?model=rt"),
    (TargetSpec("azure", endpoint="https://myres.openai.azure.com/", deployment="rt"),
     "wss://myres.openai.azure.com/openai/v1/realtime?model=rt"),
    (TargetSpec("openai", endpoint="ws://127.0.0.1:8765", model="m"),
     "ws://127.0.0.1:8765/v1/realtime?model=m"),
    (TargetSpec("azure", endpoint="http://[::1]:9000/gw", deployment="a b", protocol="preview"),
     "ws://[::1]:9000/gw/openai/realtime?api-version=2025-04-01-preview&deployment=a%20b"),
])
def test_build_url_for_each_service_path(spec: TargetSpec, url: str) -> None:
    assert build_url(spec) == url


@pytest.mark.parametrize(("spec", "message"), [
    (TargetSpec("bedrock", model="m"), "unknown provider 'bedrock'"),
    (TargetSpec("openai", model="m", protocol="beta"), "unknown protocol 'beta'"),
    (TargetSpec("openai"), "needs model"),
    (TargetSpec("openai", model="m", protocol="preview"), "Azure's dated api-version path"),
    (TargetSpec("azure", deployment="d"), "needs resource or endpoint"),
    (TargetSpec("azure", resource="r"), "needs deployment"),
    (TargetSpec("azure", resource="r", deployment="d", api_version="2025-04-01-preview"),
     "refuses it with HTTP 401"),
    (TargetSpec("azure", resource="bad_name!", deployment="d"), "not a valid resource name"),
    (TargetSpec("azure", resource="evil.example.com", deployment="d"), "use endpoint"),
    (TargetSpec("openai", endpoint="ftp://host", model="m"), "is not a ws://"),
    (TargetSpec("openai", endpoint="https://api.openai.com/v1", model="m"), "already holds the API"),
    (TargetSpec("openai", endpoint="ws://h:99999", model="m"), "bad port"),
])
def test_build_url_rejects_with_one_line(spec: TargetSpec, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_url(spec)
    assert "\n" not in str(info.value)


async def test_resolve_openai_key_goes_in_a_bearer_header_never_in_the_target() -> None:
    target = resolve(TargetSpec("openai", model="gpt-realtime", region="global"), ENV)
    assert target.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert (target.name, target.region, target.model, target.provider) == (
        "global/gpt-realtime", "global", "gpt-realtime", "openai")
    assert target.dialect is Dialect.GA and target.headers == ()
    assert isinstance(target.auth, ApiKey)
    assert await target.auth.headers() == (("Authorization", "Bearer sk-test"),)
    assert "sk-test" not in repr(target) and "sk-test" not in target.auth.describe()


async def test_resolve_azure_uses_api_key_header_and_named_variable() -> None:
    spec = TargetSpec("azure", resource="r", deployment="prod-rt", model="gpt-realtime",
                      protocol="preview", region="eastus2", api_key_env="MY_KEY",
                      headers=(("x-trace", "1"),))
    target = resolve(spec, ENV)
    assert target.dialect is Dialect.BETA and target.model == "gpt-realtime"
    assert "deployment=prod-rt" in target.url
    assert target.auth is not None and await target.auth.headers() == (("api-key", "mine"),)
    assert target.headers == (("x-trace", "1"),)
    assert "$MY_KEY" in target.auth.describe()


@pytest.mark.parametrize(("spec", "kwargs", "message"), [
    (TargetSpec("azure", resource="r", deployment="d"), {"env": {}},
     "environment variable AZURE_OPENAI_API_KEY is not set"),
    (TargetSpec("openai", model="m", api_key_env="NOPE"), {}, "environment variable NOPE is not set"),
    (TargetSpec("openai", model="m", auth="password"), {}, "unknown auth 'password'"),
    (TargetSpec("openai", model="m", auth="entra"), {}, "is for provider \"azure\""),
    (TargetSpec("openai", endpoint="ws://10.0.0.5:80", model="m"), {},
     "plaintext ws:// to 10.0.0.5 would send credentials unencrypted"),
    (TargetSpec("openai", model="m", headers=(("Authorization", "Bearer x"),)), {},
     "carries a credential"),
])
def test_resolve_rejects_with_one_line(spec: TargetSpec, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve(spec, kwargs.get("env", ENV))
    assert "\n" not in str(info.value)
    assert not any(v in str(info.value) for v in ENV.values())


def test_plaintext_is_fine_to_loopback_or_when_allowed() -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):
        resolve(TargetSpec("openai", endpoint=f"ws://{host}:1", model="m", auth="none"), {})
    remote = TargetSpec("openai", endpoint="ws://10.0.0.5:80", model="m", auth="none")
    resolve(remote, {}, allow_insecure=True)
    resolve(TargetSpec("openai", endpoint="ws://10.0.0.5:80", model="m", auth="none", insecure=True),
            {})


def test_entra_auth_builds_a_token_provider_with_the_configured_scope() -> None:
    made: list[str] = []

    class Cred:
        def get_token(self, *scopes: str) -> object:
            raise AssertionError("not called at resolve time")

    def factory() -> Cred:
        made.append("cred")
        return Cred()

    spec = TargetSpec("azure", resource="r", deployment="d", auth="entra",
                      scope="https://ai.azure.com/.default")
    target = resolve(spec, {}, credential=factory)
    assert isinstance(target.auth, EntraToken) and target.auth.scope == "https://ai.azure.com/.default"
    assert made == ["cred"]


def test_example_targets_file_loads_and_resolves() -> None:
    specs = load_targets(REPO / "workloads" / "targets.example.toml")
    assert len(specs) >= 3
    urls = {s.display_name: build_url(s) for s in specs}
    assert any("/openai/realtime?api-version=" in u for u in urls.values())
    assert any("/openai/v1/realtime?model=" in u for u in urls.values())
    assert any(u.startswith("wss://api.openai.com/v1/realtime") for u in urls.values())


def test_targets_file_errors_and_selection(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text('[[target]]\nname = "a"\nprovider = "openai"\nmodel = "m"\n'
                 '[[target]]\nname = "b"\nprovider = "azure"\nresource = "r"\ndeployment = "d"\n')
    assert [s.display_name for s in load_targets(f, ["b"])] == ["b"]
    with pytest.raises(ConfigError, match="no target named 'c'"):
        load_targets(f, ["c"])
    for body, message in [
        ('[[target]]\nprovider = "openai"\nmodle = "m"\n', "unknown key 'modle'"),
        ('[[target]]\nmodel = "m"\n', "provider is required"),
        ('[[target]]\nprovider = "openai"\nmodel = 5\n', "model must be a string"),
        ('[[target]]\nprovider = "openai"\nmodel = "m"\n' * 2, "two targets are named"),
        ('[[target]]\nprovider = "openai"\nmodel = "m"\nreasoning = { effort = "max" }\n',
         r"target\[0\].reasoning.effort must be one of 'minimal', 'low'"),
        ('[[target]]\nprovider = "openai"\nmodel = "m"\nreasoning = "low"\n',
         r"target\[0\].reasoning must be a table"),
        ('[target]\nprovider = "openai"\n', "no \\[\\[target\\]\\] tables"),
        ("x = 1\n", "unknown key 'x'"),
        ("[[target]\n", "invalid TOML"),
    ]:
        f.write_text(body)
        with pytest.raises(ConfigError, match=message):
            load_targets(f)
    with pytest.raises(ConfigError, match="targets file not found"):
        load_targets(tmp_path / "missing.toml")


def test_a_targets_reasoning_effort_overrides_the_scenarios_and_needs_ga(
        tmp_path: Path, scenario: Scenario) -> None:
    f = tmp_path / "t.toml"
    f.write_text('[[target]]\nname = "think"\nprovider = "openai"\nmodel = "gpt-realtime-2"\n'
                 '[target.reasoning]\neffort = "high"\n'
                 '[[target]]\nname = "plain"\nprovider = "openai"\nmodel = "gpt-realtime-2"\n')
    think, plain = (resolve(s, {"OPENAI_API_KEY": "k"}) for s in load_targets(f))
    assert (think.reasoning_effort, plain.reasoning_effort) == ("high", None)
    low = replace(scenario, session=replace(scenario.session, reasoning_effort="low"))
    assert low.session_for(think).reasoning_effort == "high"
    assert low.session_for(plain).reasoning_effort == "low"
    assert scenario.session_for(plain).reasoning_effort is None
    # reasoning, noise-reduction strength and the idle timeout exist in GA only
    beta = replace(plain, dialect=Dialect.BETA)
    with pytest.raises(ConfigError, match=r"session\.reasoning\.effort exists only in the GA"):
        low.session_for(beta)
    idle = replace(scenario, session=replace(scenario.session, turn_detection=TurnDetection(
        idle_timeout_ms=5000)))
    with pytest.raises(ConfigError, match=r"turn_detection\.idle_timeout_ms exists only in"):
        idle.session_for(beta)
    assert scenario.session_for(beta) == scenario.session


def test_a_url_target_is_labelled_from_its_query_and_region_local() -> None:
    from rtbench.commands.targetflags import model_from_url

    assert model_from_url("wss://api.openai.com/v1/realtime?model=gpt-realtime-2") == "gpt-realtime-2"
    assert model_from_url("wss://x.openai.azure.com/openai/realtime?api-version=v&deployment=d1") == "d1"
    assert model_from_url("ws://127.0.0.1:1/v1/realtime") is None
