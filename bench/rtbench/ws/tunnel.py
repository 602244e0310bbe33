"""An HTTP CONNECT tunnel through a forward proxy, as a :data:`~rtbench.ws.client.Dial`.

:func:`via_proxy` wraps a dial: it connects to the proxy instead, asks it for a tunnel to the
target (``CONNECT host:port``), and returns the same stream once the proxy answers 2xx, so
``ws.client.connect`` runs TLS and the upgrade over it unchanged (and a plain TCP tunnel keeps
the client's direct-to-socket writes). Anything but 2xx is :class:`ProxyRefused` with the
proxy's status line; the refusal's body is not read.
"""

from __future__ import annotations

import trio

from .client import Dial, UpgradeError

#: The most a proxy's response head may take: a CONNECT answer is a few hundred bytes.
MAX_HEAD_BYTES = 16 * 1024


class ProxyRefused(UpgradeError):
    """The proxy answered the CONNECT with a non-2xx status (407: credentials wanted or bad)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".rstrip())
        self.status = status
        self.reason = reason


def connect_request(host: str, port: int, authorization: str | None) -> bytes:
    """The CONNECT request for ``host:port`` (IPv6 in brackets), with Basic credentials if any."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_status(head: bytes) -> tuple[int, str]:
    """Status and reason of a response head (``HTTP/1.1 200 Connection established``)."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not (code.isdigit() and len(code) == 3):
        raise UpgradeError(f"bad proxy response: {line[:80]!r}")
    return int(code), reason.strip()


async def _read_head(stream: trio.abc.Stream) -> bytes:
    """The response up to its blank line. A proxy sends nothing after a 2xx head until the
    client speaks, so a read never takes bytes of the tunnel itself."""
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > MAX_HEAD_BYTES:
            raise UpgradeError(f"proxy response head over {MAX_HEAD_BYTES} bytes")
        data = await stream.receive_some(MAX_HEAD_BYTES)
        if not data:
            raise UpgradeError("the proxy closed the connection before answering CONNECT")
        head += data
    return head


def via_proxy(proxy_host: str, proxy_port: int, authorization: str | None, dial: Dial) -> Dial:
    """A dial that reaches ``(host, port)`` through the proxy at ``proxy_host:proxy_port``.

    Raises OSError if the proxy cannot be reached, :class:`ProxyRefused` if it will not tunnel,
    UpgradeError if its answer is not HTTP or data followed a 2xx head.
    """

    async def dial_through(host: str, port: int) -> trio.abc.Stream:
        stream = await dial(proxy_host, proxy_port)
        try:
            await stream.send_all(connect_request(host, port, authorization))
            head = await _read_head(stream)
            status, reason = parse_status(head)
            if not 200 <= status < 300:
                raise ProxyRefused(status, reason)
            if not head.endswith(b"\r\n\r\n"):
                raise UpgradeError("the proxy sent data before the tunnel was used")
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            raise UpgradeError(f"connection to the proxy lost: {exc.__cause__ or exc}") from None
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream

    return dial_through
