"""Credentials for the WebSocket handshake: headers a session asks for at connect time.

Secrets live only inside these objects. A :class:`~rtbench.config.scenario.Target` carries a provider,
never a key, so a target can be printed, logged or written to the manifest safely; ``repr`` and
``describe`` name where a key comes from, never its value.

Microsoft Entra ID tokens expire (typically after 60–90 minutes), so long runs must fetch a new
one. :class:`EntraToken` caches the token and refreshes it a margin before expiry, once for all
sessions (a lock), in a worker thread because ``azure-identity`` credentials block.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import trio

Headers = tuple[tuple[str, str], ...]

DEFAULT_ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
#: Fetch a new token this long before the current one expires.
REFRESH_MARGIN_S = 300.0


class AuthError(Exception):
    """Credentials could not be obtained (one line, never contains a secret)."""


class HeaderSource(Protocol):
    """What a session calls at connect time to get fresh authentication headers."""

    async def headers(self) -> Headers: ...

    def describe(self) -> str:
        """Where the credential comes from, for the manifest (never the secret)."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Every credential value handed out so far, for the redactor (config/secrets.py)."""
        ...


class ApiKey:
    """A static key sent as ``api-key: <key>`` (Azure) or ``Authorization: Bearer <key>``."""

    def __init__(self, value: str, *, header: str, source: str) -> None:
        if header not in ("api-key", "Authorization"):
            raise ValueError(f"unsupported key header {header!r}")
        self._value = value
        self.header = header
        self.source = source

    async def headers(self) -> Headers:
        value = self._value if self.header == "api-key" else f"Bearer {self._value}"
        return ((self.header, value),)

    def describe(self) -> str:
        return f"{self.header} header, key from ${self.source}"

    def secrets(self) -> tuple[str, ...]:
        return (self._value,)

    def __repr__(self) -> str:
        return f"ApiKey(header={self.header!r}, source={self.source!r})"


class TokenCredential(Protocol):
    """The part of ``azure.core.credentials.TokenCredential`` rtbench uses."""

    def get_token(self, *scopes: str) -> Any:
        """Returns an object with ``token: str`` and ``expires_on: int`` (unix seconds)."""
        ...


class EntraToken:
    """``Authorization: Bearer <Entra token>``, refreshed ``margin_s`` before it expires."""

    def __init__(self, credential: TokenCredential, scope: str = DEFAULT_ENTRA_SCOPE, *,
                 margin_s: float = REFRESH_MARGIN_S, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self.scope = scope
        self.margin_s = margin_s
        self._clock = clock
        self._token: str | None = None
        self._issued: list[str] = []     # every token fetched: a row may quote an old one
        self._expires_on = 0.0
        self._lock: trio.Lock | None = None
        self.fetches = 0

    def stale(self) -> bool:
        return self._token is None or self._clock() >= self._expires_on - self.margin_s

    async def headers(self) -> Headers:
        return (("Authorization", f"Bearer {await self._current()}"),)

    async def _current(self) -> str:
        if self._lock is None:
            self._lock = trio.Lock()
        async with self._lock:  # 50 sessions connecting at once fetch one token, not 50
            if self.stale():
                try:
                    got = await trio.to_thread.run_sync(self._credential.get_token, self.scope,
                                                        abandon_on_cancel=True)
                except Exception as exc:  # any credential failure becomes one safe line
                    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                    raise AuthError(f"cannot get a Microsoft Entra token for {self.scope}: "
                                    f"{type(exc).__name__}: {first}") from None
                self._token, self._expires_on = str(got.token), float(got.expires_on)
                self._issued.append(self._token)
                self.fetches += 1
            assert self._token is not None
            return self._token

    def describe(self) -> str:
        return f"Microsoft Entra ID token, scope {self.scope}"

    def secrets(self) -> tuple[str, ...]:
        return tuple(self._issued)

    def __repr__(self) -> str:
        return f"EntraToken(scope={self.scope!r})"


def default_azure_credential() -> TokenCredential:
    """``azure.identity.DefaultAzureCredential`` (optional dependency ``rtbench[azure]``)."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise AuthError("auth = \"entra\" needs azure-identity: pip install 'rtbench[azure]'") from None
    credential: TokenCredential = DefaultAzureCredential()
    return credential
