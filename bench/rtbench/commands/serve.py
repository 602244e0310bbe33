"""``rtbench serve``: the Realtime simulator as a standalone server."""

from __future__ import annotations

import argparse
import os
import signal

import trio

from ..config.scenario import ConfigError
from ..sim import SimConfig, SimServer
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
    add_profile_args(serve)


def handle(ns: argparse.Namespace) -> int:
    api_key = None
    if ns.api_key_env:
        api_key = os.environ.get(ns.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env: environment variable {ns.api_key_env} is not set")
    profile, faults = simulator_from(ns)
    server = SimServer(SimConfig(host=ns.host, port=ns.port, profile=profile, api_key=api_key,
                                 seed=ns.seed, faults=faults, stats_file=ns.stats_file,
                                 openai_beta_disabled=ns.openai_beta_disabled))

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(server.serve)
                print(f"listening on {ns.host}:{port}", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)
    return 0
