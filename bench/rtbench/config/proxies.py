"""Which HTTP proxy a target's connection tunnels through, decided once when the target is built.

The setting comes from ``--proxy`` (every target), else ``proxy = "..."`` in the target's table,
else the environment, read as httpx and websockets read it (``urllib.request.getproxies()``,
lower-case names before upper-case): ``wss://`` uses ``HTTPS_PROXY``, ``ws://`` uses
``HTTP_PROXY``, either falls back to ``ALL_PROXY``; ``NO_PROXY`` (``urllib.request.proxy_bypass``)
exempts a host, a domain suffix, or everything (``*``). Like httpx, loopback is *not* exempt
unless ``NO_PROXY`` names it (``localhost,127.0.0.1``). ``--proxy none`` / ``proxy = ""``
disables the proxy whatever the environment says.

Only ``http://`` proxies (HTTP CONNECT) are supported; credentials may sit in the URL
(``http://user:pass@host:port``, sent as ``Proxy-Authorization: Basic``). They are never shown:
:func:`display_proxy` is what the manifest and messages carry, and the redactor masks the
password (:func:`proxy_secrets`).
"""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .scenario import ConfigError

#: What ``--proxy`` / ``proxy =`` take to mean "no proxy, whatever the environment says".
DISABLED = ("", "none")
#: The environment's proxy names (``urllib.request.getproxies`` keys) a URL scheme consults.
_ENV_KEYS = {"wss": ("https", "all"), "ws": ("http", "all")}


@dataclass(frozen=True, slots=True)
class Proxy:
    """A parsed ``http://`` proxy URL: where to connect and what to authenticate with."""

    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic), None without credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def display(self) -> str:
        """``http://host:port``: the proxy without its credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_proxy(url: str, where: str) -> Proxy:
    """Check a proxy URL (``http://[user:pass@]host[:port]``); ConfigError without the secret."""
    parts = urlsplit(url if "://" in url else f"http://{url}")  # httpx: bare host:port is http
    shown = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "(no host)"
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{where}: proxy {shown} has a bad port") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"{where}: proxy {shown} is not an http://host[:port] URL (only HTTP "
                          "CONNECT proxies are supported)")
    if parts.path.strip("/") or parts.query:
        raise ConfigError(f"{where}: proxy {shown} must be only http://[user:pass@]host[:port]")
    return Proxy(parts.hostname, port or 80,
                 None if parts.username is None else unquote(parts.username),
                 None if parts.password is None else unquote(parts.password))


def environment_proxy(url: str) -> str | None:
    """The proxy URL the environment gives ``url`` (None: direct), as websockets reads it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    if urllib.request.proxy_bypass(f"{host}:{port}"):
        return None
    proxies = urllib.request.getproxies()
    for key in _ENV_KEYS.get(parts.scheme, ()):
        if proxies.get(key):
            return proxies[key]
    return None


def proxy_for(url: str, setting: str | None, where: str) -> str | None:
    """The proxy ``url`` tunnels through: ``setting`` (None: the environment's), checked."""
    chosen = environment_proxy(url) if setting is None else setting.strip()
    if chosen is None or chosen.lower() in DISABLED:
        return None
    if setting is not None:
        parse_proxy(chosen, where)
    else:
        try:
            parse_proxy(chosen, f"{where} (from the environment)")
        except ConfigError as exc:
            raise ConfigError(f"{exc}; --proxy none ignores the environment's") from None
    return chosen if "://" in chosen else f"http://{chosen}"


def display_proxy(proxy: str | None) -> str | None:
    """``http://host:port`` of a checked proxy URL (credentials dropped), None for direct."""
    return None if proxy is None else parse_proxy(proxy, "proxy").display


def proxy_secrets(proxy: str | None) -> list[str]:
    """What of a proxy URL must never be shown: its password (raw and decoded) and the Basic
    value that carries it (a proxy may echo the header back)."""
    if proxy is None:
        return []
    parsed = parse_proxy(proxy, "proxy")
    raw = urlsplit(proxy).password
    found = [s for s in (raw, parsed.password) if s]
    if parsed.authorization is not None and parsed.password:
        found.append(parsed.authorization.removeprefix("Basic "))
    return found
