"""One redactor that knows every configured secret, for everything rtbench writes or prints.

Secrets reach rtbench four ways: API keys and Entra tokens (``auth``: the values it handed out),
header values (``--header NAME=VALUE``, ``headers`` in a targets file: an APIM subscription key
is a plain header), query parameters of a URL that name a credential (``?api-key=``,
``&sig=``, ...), and credentials in a proxy URL. A server may echo any of them back ("Incorrect
API key provided: Bearer sk-..."), so the redactor is applied to the recorded command line, to
every error row before it is written, and to what is printed; it replaces each known value,
wherever it appears, with ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit

from .proxies import proxy_secrets
from .scenario import Target

MASK = "***"
#: Query parameter names that carry a credential (compared case-insensitively, ``-``/``_`` alike).
SECRET_PARAMS = frozenset({
    "apikey", "api_key", "key", "token", "access_token", "auth", "sig",
    "signature", "secret", "client_secret", "password", "subscription_key", "code",
})
#: Values shorter than this are not masked: "1" or "ga" would blank half of every message.
MIN_SECRET_LEN = 4
_URL = re.compile(r"(?:wss?|https?)://[^\s\"'<>]+")


def _is_secret_param(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_PARAMS


def url_secrets(url: str) -> list[str]:
    """The credential values a URL carries: secret-looking query values and a password."""
    parts = urlsplit(url)
    found = [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _is_secret_param(k)]
    if parts.password:
        found.append(parts.password)
    return found


class Redactor:
    """Masks every value it knows; built from the run's targets (their secrets are looked up
    at each call, so a token fetched mid-run is masked too) plus any extra strings."""

    def __init__(self, targets: Sequence[Target] = (), extra: Iterable[str] = ()) -> None:
        self._targets = tuple(targets)
        self._fixed = {s for t in self._targets for s in self._target_fixed(t)} | set(extra)

    @staticmethod
    def _target_fixed(target: Target) -> list[str]:
        return [*url_secrets(target.url), *(value for _, value in target.headers),
                *proxy_secrets(target.proxy)]

    def secrets(self) -> list[str]:
        dynamic = {s for t in self._targets if t.auth is not None for s in t.auth.secrets()}
        known = {s for s in self._fixed | dynamic if len(s) >= MIN_SECRET_LEN}
        return sorted(known, key=len, reverse=True)   # longest first: no partial leftovers

    def __call__(self, text: str) -> str:
        text = _URL.sub(lambda m: _mask_url(m.group(0)), text)
        for secret in self.secrets():
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def argv(self, argv: Sequence[str]) -> list[str]:
        """A command line safe to record: header values and URL secrets masked."""
        out: list[str] = []
        header_next = False
        for arg in argv:
            if header_next:
                arg = _mask_header(arg)
            elif arg.startswith("--header="):
                arg = "--header=" + _mask_header(arg.removeprefix("--header="))
            header_next = arg == "--header"
            out.append(self(arg))
        return out


def _mask_header(item: str) -> str:
    name, sep, _value = item.partition("=")
    return f"{name}={MASK}" if sep else item


def _mask_url(url: str) -> str:
    """``url`` with secret query values and any password replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(":" + parts.password + "@", ":" + MASK + "@", 1)
    query = "&".join(
        (p.split("=", 1)[0] + "=" + MASK) if "=" in p and _is_secret_param(p.split("=", 1)[0])
        else p for p in parts.query.split("&")) if parts.query else ""
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        rebuilt += "?" + query
    if parts.fragment:
        rebuilt += "#" + parts.fragment
    return rebuilt
