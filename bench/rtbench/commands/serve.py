"""``rtbench serve``: the Realtime simulator as a standalone server.

The first line on stdout is always ``listening on HOST:PORT`` (``rtbench run``'s embedded
simulator and the tests parse it); with TLS a second line says so and where the CA to trust is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import trio

from ..config.scenario import ConfigError
from ..process.gcpolicy import freeze_baseline
from ..sim import SimConfig, SimServer
from ..sim import tls as simtls
from ..ws.server import HANDSHAKE_TIMEOUT_S
from .argtypes import duration
from .simflags import add_profile_args, simulator_from

HELP = "run the Realtime simulator"


def add_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 = pick a free port")
    serve.add_argument("--api-key-env", default=None,
                       help="require the key held in this environment variable")
    serve.add_argument("--seed", type=int, default=None, help="random seed for latencies")
    serve.add_argument("--openai-beta-disabled", action="store_true",
                       help="behave like OpenAI after May 2026: a beta-shaped connection on "
                            "/v1/realtime gets beta_api_shape_disabled and close 4000")
    serve.add_argument("--max-connections", type=int, default=None, metavar="N",
                       help="open connections at most; more are answered 503 (default: the file "
                            "limit less a margin)")
    serve.add_argument("--handshake-timeout", type=duration("s"),
                       default=HANDSHAKE_TIMEOUT_S, metavar="DURATION",
                       help=f"time to complete the upgrade (default {HANDSHAKE_TIMEOUT_S:g}s)")
    t = serve.add_argument_group("TLS (wss://)")
    t.add_argument("--tls", choices=["self-signed"], default=None,
                   help="serve wss:// with a certificate issued at start by a new CA")
    t.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                   help="serve wss:// with this certificate chain (with --tls-key)")
    t.add_argument("--tls-key", type=Path, default=None, metavar="PEM",
                   help="the private key of --tls-cert")
    t.add_argument("--tls-ca-out", type=Path, default=None, metavar="FILE",
                   help="--tls self-signed: write the CA certificate here for clients to trust "
                        "(default: a temporary file, named on the second line of output)")
    add_profile_args(serve)


@contextlib.contextmanager
def tls_from(ns: argparse.Namespace) -> Iterator[tuple[ssl.SSLContext | None, str | None]]:
    """The server's TLS context and the line that tells the client what to trust."""
    if ns.tls is not None and (ns.tls_cert or ns.tls_key):
        raise ConfigError("give --tls self-signed or --tls-cert/--tls-key, not both")
    if ns.tls_ca_out is not None and ns.tls is None:
        raise ConfigError("--tls-ca-out is for --tls self-signed")
    if ns.tls_cert or ns.tls_key:
        if not (ns.tls_cert and ns.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        try:
            ctx = simtls.from_files(ns.tls_cert, ns.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--tls-cert/--tls-key: cannot load them: {exc}") from None
        yield ctx, f"tls: wss://, certificate {ns.tls_cert}"
        return
    if ns.tls is None:
        yield None, None
        return
    ctx, ca_pem = simtls.self_signed([ns.host])
    with contextlib.ExitStack() as cleanup:
        ca_out = ns.tls_ca_out
        if ca_out is None:
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="rtbench-ca-"))
            ca_out = Path(folder) / "ca.pem"
        try:
            ca_out.write_bytes(ca_pem)
        except OSError as exc:
            raise ConfigError(f"--tls-ca-out: cannot write {ca_out}: {exc.strerror}") from None
        yield ctx, f"tls: wss://, self-signed, trust the CA in {ca_out}"


def check_writable(path: Path, flag: str) -> None:
    """``path`` can be written (its folder exists, it is not a folder): one line if not."""
    if path.is_dir():
        raise ConfigError(f"{flag}: {path} is a directory")
    if not path.parent.is_dir():
        raise ConfigError(f"{flag}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{flag}: cannot write in {path.parent}")


def handle(ns: argparse.Namespace) -> int:
    api_key = None
    if ns.api_key_env:
        api_key = os.environ.get(ns.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env: environment variable {ns.api_key_env} is not set")
    profile, faults = simulator_from(ns)
    if ns.max_connections is not None and ns.max_connections < 1:
        raise ConfigError("--max-connections must be at least 1")
    if ns.handshake_timeout <= 0:
        raise ConfigError("--handshake-timeout must be positive")
    if ns.stats_file is not None:   # before listening: a bad path is a config error, not a crash
        check_writable(ns.stats_file, "--stats-file")
    with tls_from(ns) as (ssl_context, tls_line):
        server = SimServer(SimConfig(host=ns.host, port=ns.port, profile=profile,
                                     api_key=api_key, seed=ns.seed, faults=faults,
                                     stats_file=ns.stats_file,
                                     openai_beta_disabled=ns.openai_beta_disabled,
                                     ssl_context=ssl_context,
                                     max_connections=ns.max_connections,
                                     handshake_timeout_s=ns.handshake_timeout))

        async def main() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(server.serve)
                    print(f"listening on {ns.host}:{port}", flush=True)
                    if tls_line is not None:
                        print(tls_line, flush=True)
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        break

        freeze_baseline()   # before the loop: its pass delays no session
        trio.run(main)
    return 0
