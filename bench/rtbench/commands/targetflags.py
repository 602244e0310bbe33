"""Target flags of ``rtbench run``: a targets file, or one target described by flags.

Kept apart from ``commands/run.py`` so the run command stays a short list of steps; this module
turns the flags into :class:`~rtbench.config.scenario.Target` objects (or None for the embedded
simulator) and raises one-line :class:`~rtbench.config.scenario.ConfigError` for every misuse.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..config.auth import DEFAULT_ENTRA_SCOPE
from ..config.proxies import proxy_for
from ..config.scenario import ConfigError, Target
from ..config.targets import (
    AUTH_METHODS,
    PROTOCOLS,
    PROVIDERS,
    TargetSpec,
    check_ca_file,
    check_url,
    load_targets,
    resolve,
)
from ..protocol import Dialect

#: Flags that describe a one-off target and so need --provider.
_SPEC_FLAGS = ("endpoint", "resource", "deployment", "protocol", "api_version", "auth",
               "api_key_env", "scope", "header")


def add_target_args(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("real targets (see targets.example.toml; `rtbench init DIR` writes one)")
    g.add_argument("--targets", type=Path, default=None, help="targets TOML file ([[target]] tables)")
    g.add_argument("--target", action="append", default=[], metavar="NAME",
                   help="only this target of the file (repeatable)")
    g.add_argument("--provider", choices=PROVIDERS, default=None, help="one-off target: provider")
    g.add_argument("--endpoint", default=None, help="scheme://host[:port] replacing the default base")
    g.add_argument("--resource", default=None, help="Azure resource name or host")
    g.add_argument("--deployment", default=None, help="Azure deployment")
    g.add_argument("--protocol", choices=PROTOCOLS, default=None,
                   help="ga (default) or preview (Azure dated api-version path, beta events)")
    g.add_argument("--api-version", default=None, help="Azure preview api-version")
    g.add_argument("--auth", choices=AUTH_METHODS, default=None, help="default api-key")
    g.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the key")
    g.add_argument("--scope", default=None, help=f"Entra token scope (default {DEFAULT_ENTRA_SCOPE})")
    g.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                   help="extra non-secret header (repeatable)")
    g.add_argument("--ca-file", default=None, metavar="PEM",
                   help="wss:// of --url or the one-off target trusts this CA file instead of "
                        "the system's (in a targets file: ca_file per target; SSL_CERT_FILE "
                        "replaces the system's for all)")
    g.add_argument("--proxy", default=None, metavar="URL",
                   help="tunnel every target's connection through this http://[user:pass@]host:port "
                        "proxy (HTTP CONNECT), overriding proxy = in a targets file and the "
                        "environment (HTTPS_PROXY for wss://, HTTP_PROXY for ws://, ALL_PROXY, "
                        "NO_PROXY); 'none': no proxy")
    g.add_argument("--allow-insecure", action="store_true",
                   help="allow plaintext ws:// to non-loopback hosts")


def _headers(raw: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--header must be NAME=VALUE, got {name.strip() or item!r}")
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _one_off(ns: argparse.Namespace) -> TargetSpec:
    opt = {k: getattr(ns, k) for k in ("endpoint", "resource", "model", "deployment", "protocol",
                                       "api_version", "auth", "api_key_env", "scope", "region",
                                       "name", "ca_file")}
    return TargetSpec(provider=ns.provider, headers=_headers(ns.header),
                      **{k: v for k, v in opt.items() if v is not None})


def resolve_targets(ns: argparse.Namespace) -> list[Target] | None:
    """The run's targets from the flags; None means: start the embedded simulator."""
    given = [f for f in _SPEC_FLAGS if getattr(ns, f) not in (None, [])]
    if ns.target and ns.targets is None:
        raise ConfigError("--target selects from a targets file: give --targets FILE too")
    if sum(x is not None for x in (ns.targets, ns.provider, ns.url)) > 1:
        raise ConfigError("give only one of --targets, --provider and --url")
    if ns.ca_file is not None and ns.targets is not None:
        raise ConfigError("--ca-file is for --url or a one-off target; in a targets file give "
                          "ca_file per target")
    if given and ns.provider is None:
        raise ConfigError(f"--{given[0].replace('_', '-')} describes a one-off target: "
                          "give --provider too (or use a targets file)")
    if ns.targets is not None:
        specs = load_targets(ns.targets, ns.target)
    elif ns.provider is not None:
        specs = [_one_off(ns)]
    elif ns.url is not None:
        check_url(ns.url, "--url", insecure=ns.allow_insecure)
        check_ca_file(ns.ca_file, ns.url, "--ca-file")
        model = ns.model or model_from_url(ns.url) or "unknown"
        region = ns.region or "local"
        return [Target(name=ns.name or f"{region}/{model}", url=ns.url,
                       dialect=Dialect(ns.dialect), region=region, model=model,
                       provider="custom", ca_file=ns.ca_file, proxy=url_proxy(ns.url, ns.proxy))]
    elif ns.ca_file is not None:
        raise ConfigError("--ca-file needs --url or --provider (the embedded simulator: "
                          "--sim-tls)")
    else:
        return None
    if ns.proxy is not None:
        specs = [replace(s, proxy=ns.proxy) for s in specs]
    return [resolve(s, allow_insecure=ns.allow_insecure) for s in specs]


def url_proxy(url: str, setting: str | None) -> str | None:
    """The proxy of a target given by URL (--url, the embedded simulator): ``setting``
    (--proxy), else the environment's."""
    return proxy_for(url, setting, "--proxy" if setting is not None else url.split("?")[0])


def model_from_url(url: str) -> str | None:
    """The model label a URL names: its ``model`` query (OpenAI) or ``deployment`` (Azure)."""
    query = dict(parse_qsl(urlsplit(url).query))
    return query.get("model") or query.get("deployment") or None
