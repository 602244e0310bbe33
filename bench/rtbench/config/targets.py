"""Real targets: what a targets file (or the one-off CLI flags) says, and how it becomes a URL.

A :class:`TargetSpec` is the user's description (provider, resource, deployment, protocol, auth);
:func:`build_url` is the pure function from a spec to the WebSocket URL, and :func:`resolve`
checks everything (URL, plaintext, credentials) and returns the :class:`~rtbench.config.scenario.Target`
sessions consume. All problems are one-line :class:`~rtbench.config.scenario.ConfigError` raised before any
session starts; none of them ever contains a key.

The three service paths (protocol reference §1)::

    openai / ga       wss://api.openai.com/v1/realtime?model=M
    azure  / ga       wss://{resource}.openai.azure.com/openai/v1/realtime?model=D
    azure  / preview  wss://{resource}.openai.azure.com/openai/realtime?api-version=V&deployment=D

``endpoint`` replaces the scheme and host (and may add a path prefix for a gateway), which is how
tests point a target at a local simulator.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ..protocol import Dialect
from .auth import DEFAULT_ENTRA_SCOPE, ApiKey, AuthError, EntraToken, HeaderSource, TokenCredential
from .auth import default_azure_credential as _default_credential
from .files import read_toml
from .proxies import proxy_for
from .scenario import ConfigError, Target, reasoning_effort

PROVIDERS = ("openai", "azure")
PROTOCOLS = ("ga", "preview")
AUTH_METHODS = ("api-key", "entra", "none")
OPENAI_BASE = "wss://api.openai.com"
AZURE_DOMAIN = "openai.azure.com"
#: Azure hosts a resource name may already carry (protocol reference §1.2).
AZURE_DOMAINS = (AZURE_DOMAIN, "cognitiveservices.azure.com", "services.ai.azure.com")
DEFAULT_API_VERSION = "2025-04-01-preview"
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY"}
#: Headers that carry credentials: they come from the environment, never from a file or flag.
SECRET_HEADERS = frozenset({"authorization", "api-key"})

_RESOURCE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})$")
_SPEC_KEYS = {
    "name", "provider", "region", "endpoint", "resource", "model", "deployment", "protocol",
    "api_version", "auth", "api_key_env", "scope", "headers", "insecure", "ca_file",
    "proxy", "reasoning",
}


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target as the user wrote it (targets-file table or CLI flags)."""

    provider: str
    name: str | None = None
    region: str = "default"
    endpoint: str | None = None
    resource: str | None = None
    model: str | None = None
    deployment: str | None = None
    protocol: str = "ga"
    api_version: str | None = None
    auth: str = "api-key"
    api_key_env: str | None = None
    scope: str = DEFAULT_ENTRA_SCOPE
    headers: tuple[tuple[str, str], ...] = ()
    insecure: bool = False
    #: PEM CA file wss:// trusts instead of the system's (relative: to the targets file).
    ca_file: str | None = None
    #: ``http://[user:pass@]host:port`` to tunnel through; None: the environment's (``""`` or
    #: ``"none"``: no proxy). See :mod:`rtbench.config.proxies`.
    proxy: str | None = None
    #: ``reasoning = { effort = ... }``: this target's sessions use it over the scenario's.
    reasoning_effort: str | None = None

    @property
    def label_model(self) -> str:
        """The model label rows carry: the model if given, else the Azure deployment."""
        return self.model or self.deployment or "unknown"

    @property
    def display_name(self) -> str:
        return self.name or f"{self.region}/{self.label_model}"


def _where(spec: TargetSpec) -> str:
    return f"target {spec.display_name}"


def _base(spec: TargetSpec) -> str:
    """``scheme://host[:port][/prefix]`` with ws/wss scheme, from endpoint, resource or default."""
    if spec.endpoint is not None:
        parts = urlsplit(spec.endpoint.strip())
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        if scheme not in ("ws", "wss") or not parts.hostname:
            raise ConfigError(f"{_where(spec)}: endpoint {spec.endpoint!r} is not a "
                              "ws://, wss://, http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ConfigError(f"{_where(spec)}: endpoint must not carry a query; give only "
                              "scheme://host[:port]")
        path = parts.path.rstrip("/")
        if path.rsplit("/", 1)[-1] in ("v1", "openai", "realtime"):
            raise ConfigError(f"{_where(spec)}: endpoint {spec.endpoint!r} already holds the API "
                              "path; give only scheme://host[:port] (the path follows provider "
                              "and protocol)")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"{_where(spec)}: endpoint {spec.endpoint!r} has a bad port") from None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    if spec.provider == "openai":
        return OPENAI_BASE
    if not spec.resource:
        raise ConfigError(f"{_where(spec)}: provider \"azure\" needs resource or endpoint")
    resource = spec.resource.strip().lower()
    if "." in resource:
        if not any(resource.endswith("." + d) for d in AZURE_DOMAINS):
            raise ConfigError(f"{_where(spec)}: resource {spec.resource!r} is neither a resource "
                              f"name nor a host under {', '.join(AZURE_DOMAINS)} (use endpoint)")
        return f"wss://{resource}"
    if not _RESOURCE.match(resource):
        raise ConfigError(f"{_where(spec)}: resource {spec.resource!r} is not a valid resource name")
    return f"wss://{resource}.{AZURE_DOMAIN}"


def build_url(spec: TargetSpec) -> str:
    """The WebSocket URL of ``spec``. Pure: no environment, no network."""
    if spec.provider not in PROVIDERS:
        raise ConfigError(f"{_where(spec)}: unknown provider {spec.provider!r} "
                          f"(expected one of: {', '.join(PROVIDERS)})")
    if spec.protocol not in PROTOCOLS:
        raise ConfigError(f"{_where(spec)}: unknown protocol {spec.protocol!r} "
                          f"(expected one of: {', '.join(PROTOCOLS)})")
    base = _base(spec)
    if spec.provider == "openai":
        if spec.protocol == "preview":
            raise ConfigError(f"{_where(spec)}: protocol \"preview\" is for Azure's dated "
                              "api-version path only (OpenAI retired the beta protocol)")
        if spec.deployment or spec.api_version:
            raise ConfigError(f"{_where(spec)}: deployment and api_version are Azure settings")
        if not spec.model:
            raise ConfigError(f"{_where(spec)}: provider \"openai\" needs model")
        return f"{base}/v1/realtime?model={quote(spec.model, safe='')}"
    deployment = spec.deployment or spec.model
    if not deployment:
        raise ConfigError(f"{_where(spec)}: provider \"azure\" needs deployment (or model)")
    dep = quote(deployment, safe="")
    if spec.protocol == "ga":
        if spec.api_version:
            raise ConfigError(f"{_where(spec)}: api_version is only for protocol = \"preview\"; "
                              "the Azure GA path /openai/v1/realtime refuses it with HTTP 401")
        return f"{base}/openai/v1/realtime?model={dep}"
    version = quote(spec.api_version or DEFAULT_API_VERSION, safe="")
    return f"{base}/openai/realtime?api-version={version}&deployment={dep}"


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, where: str, *, insecure: bool) -> None:
    """A usable ws(s) URL; plaintext only to loopback unless explicitly allowed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"{where}: bad URL {url!r}") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"{where}: bad URL {url!r} (expected ws:// or wss:// with a host)")
    if parts.scheme == "ws" and not insecure and not is_loopback(parts.hostname):
        raise ConfigError(f"{where}: plaintext ws:// to {parts.hostname} would send credentials "
                          "unencrypted; use wss:// or allow it with --allow-insecure "
                          "(insecure = true)")


CredentialFactory = Callable[[], TokenCredential]


def check_ca_file(ca_file: str | None, url: str, where: str) -> None:
    """A CA file exists and goes with a wss:// URL (ws:// has no certificate to check)."""
    if ca_file is None:
        return
    if urlsplit(url).scheme != "wss":
        raise ConfigError(f"{where}: ca_file is for wss:// URLs, not {url.split('?')[0]}")
    if not Path(ca_file).is_file():
        raise ConfigError(f"{where}: ca_file {ca_file} is not a file")


def make_auth(spec: TargetSpec, env: Mapping[str, str],
              credential: CredentialFactory = _default_credential) -> HeaderSource | None:
    """The credential provider of ``spec``: key from the environment, Entra token, or none."""
    if spec.auth not in AUTH_METHODS:
        raise ConfigError(f"{_where(spec)}: unknown auth {spec.auth!r} "
                          f"(expected one of: {', '.join(AUTH_METHODS)})")
    if spec.auth == "none":
        return None
    if spec.auth == "entra":
        if spec.provider != "azure":
            raise ConfigError(f"{_where(spec)}: auth = \"entra\" is for provider \"azure\"")
        try:
            return EntraToken(credential(), spec.scope)
        except AuthError as exc:
            raise ConfigError(f"{_where(spec)}: {exc}") from None
    var = spec.api_key_env or DEFAULT_KEY_ENV[spec.provider]
    key = env.get(var, "").strip()
    if not key:
        raise ConfigError(f"{_where(spec)}: environment variable {var} is not set "
                          "(it must hold the API key)")
    return ApiKey(key, header="api-key" if spec.provider == "azure" else "Authorization",
                  source=var)


def resolve(spec: TargetSpec, env: Mapping[str, str] | None = None, *, allow_insecure: bool = False,
            credential: CredentialFactory = _default_credential) -> Target:
    """Check ``spec`` completely and build the Target sessions use."""
    url = build_url(spec)
    check_url(url, _where(spec), insecure=spec.insecure or allow_insecure)
    check_ca_file(spec.ca_file, url, _where(spec))
    for key, _ in spec.headers:
        if key.lower() in SECRET_HEADERS:
            raise ConfigError(f"{_where(spec)}: header {key!r} carries a credential; put the key "
                              "in an environment variable (api_key_env) instead")
    auth = make_auth(spec, os.environ if env is None else env, credential)
    return Target(name=spec.display_name, url=url,
                  dialect=Dialect.BETA if spec.protocol == "preview" else Dialect.GA,
                  region=spec.region, model=spec.label_model, provider=spec.provider,
                  headers=spec.headers, auth=auth, ca_file=spec.ca_file,
                  proxy=proxy_for(url, spec.proxy, _where(spec)),
                  reasoning_effort=spec.reasoning_effort)


# -- targets file ---------------------------------------------------------------------------


def _str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def spec_from_table(table: Mapping[str, Any], where: str) -> TargetSpec:
    """One ``[[target]]`` table -> TargetSpec (types and key names checked, not semantics)."""
    unknown = sorted(set(table) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    provider = _str(table, "provider", where)
    if provider is None:
        raise ConfigError(f"{where}: provider is required ({' or '.join(PROVIDERS)})")
    headers = table.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{where}.headers must be a table of strings")
    insecure = table.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{where}.insecure must be true or false")
    opt = {k: _str(table, k, where) for k in ("protocol", "auth", "scope", "region", "ca_file",
                                              "proxy")}
    return TargetSpec(
        provider=provider, name=_str(table, "name", where), endpoint=_str(table, "endpoint", where),
        resource=_str(table, "resource", where), model=_str(table, "model", where),
        deployment=_str(table, "deployment", where),
        api_version=_str(table, "api_version", where),
        api_key_env=_str(table, "api_key_env", where),
        headers=tuple((str(k), str(v)) for k, v in headers.items()), insecure=insecure,
        reasoning_effort=reasoning_effort(table.get("reasoning"), f"{where}.reasoning"),
        **{k: v for k, v in opt.items() if v is not None},
    )


def _relative_to(spec: TargetSpec, folder: Path) -> TargetSpec:
    """A relative ca_file names a file beside the targets file, wherever rtbench runs."""
    if spec.ca_file is None or Path(spec.ca_file).is_absolute():
        return spec
    return replace(spec, ca_file=str(folder / spec.ca_file))


def load_targets(path: Path, only: Sequence[str] = ()) -> list[TargetSpec]:
    """Read ``[[target]]`` tables from a TOML file; ``only`` keeps the named ones, in file order."""
    src = str(path)
    doc = read_toml(path, "targets", ConfigError)
    extra = sorted(set(doc) - {"target"})
    if extra:
        raise ConfigError(f"{src}: unknown key {extra[0]!r} at the top level (expected [[target]])")
    tables = doc.get("target", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{src}: no [[target]] tables")
    if not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(f"{src}: 'target' must be tables ([[target]]), not a list of values")
    specs = [_relative_to(spec_from_table(t, f"{src}: target[{i}]"), path.parent)
             for i, t in enumerate(tables)]
    names = [s.display_name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{src}: two targets are named {dup[0]!r}; give each a distinct name")
    if only:
        missing = [n for n in only if n not in names]
        if missing:
            raise ConfigError(f"{src}: no target named {missing[0]!r} "
                              f"(targets: {', '.join(names)})")
        specs = [s for s in specs if s.display_name in only]
    return specs
