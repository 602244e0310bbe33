"""TLS for the simulator: a certificate from files, or a throwaway CA made at start.

Why a throwaway CA (``trustme``) rather than a checked-in key: a private key in the repository
is a key anyone can use, and it expires. The CA made here lives as long as the process; only
its certificate (public) is written out, for the client to trust (``--ca-file``).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

#: Names the self-signed certificate always covers: the loopback addresses a client may use.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def from_files(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context with the PEM certificate chain and key the user gave."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def self_signed(hosts: Iterable[str] = ()) -> tuple[ssl.SSLContext, bytes]:
    """A server context with a certificate for ``hosts`` and loopback, issued by a new CA;
    and that CA's certificate (PEM), which clients must trust."""
    import trustme  # cryptography is slow to import: only when TLS is asked for

    names = dict.fromkeys((*LOOPBACK_NAMES, *(h for h in hosts if h not in ("", "0.0.0.0", "::"))))
    ca = trustme.CA(organization_name="rtbench simulator")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx, ca.cert_pem.bytes()
