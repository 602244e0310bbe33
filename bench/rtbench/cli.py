"""Command line: argument parsing only. ``rtbench [run] ...`` and ``rtbench serve ...``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import trio

from .config import ConfigError, Target, load_scenario
from .engine import RunPlan
from .protocol import Dialect
from .results import ResultsError
from .run import EXIT_CONFIG, embedded_simulator, execute, print_outcome
from .sim import Dist, Profile, SimConfig, SimServer
from .workload import WorkloadError

COMMANDS = ("run", "serve")


def _add_profile_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    g = p.add_argument_group("simulated latency (ms; median and p99 of a lognormal)")
    g.add_argument(f"--{prefix}first-audio-ms", type=float, default=700.0,
                   help="first audio delta after the end of speech arrived (default 700)")
    g.add_argument(f"--{prefix}first-audio-p99-ms", type=float, default=None,
                   help="p99 of first audio (default: 2x the median; equal = constant)")
    g.add_argument(f"--{prefix}vad-delay-ms", type=float, default=0.0,
                   help="extra delay of speech_stopped after the silence window (default 0)")
    g.add_argument(f"--{prefix}handshake-ms", type=float, default=0.0,
                   help="delay before accepting the WebSocket upgrade (default 0)")
    g.add_argument(f"--{prefix}response-audio-ms", type=int, default=1500,
                   help="audio per response (default 1500)")
    g.add_argument(f"--{prefix}delta-ms", type=int, default=100, help="audio per delta (default 100)")
    g.add_argument(f"--{prefix}realtime-factor", type=float, default=2.0,
                   help="output audio is produced at this multiple of real time (default 2)")
    g.add_argument(f"--{prefix}session-max-s", type=float, default=3600.0,
                   help="session expiry (default 3600)")


_PROFILE_FLAGS = ("first_audio_ms", "first_audio_p99_ms", "vad_delay_ms", "handshake_ms",
                  "response_audio_ms", "delta_ms", "realtime_factor", "session_max_s")


def _profile(ns: argparse.Namespace, prefix: str = "") -> Profile:
    g = {k: getattr(ns, prefix + k) for k in _PROFILE_FLAGS}
    p99 = g["first_audio_p99_ms"]
    try:
        return Profile(
            first_audio=Dist(g["first_audio_ms"],
                             2 * g["first_audio_ms"] if p99 is None else p99),
            vad_delay=Dist(g["vad_delay_ms"]),
            handshake=Dist(g["handshake_ms"]),
            response_audio_ms=g["response_audio_ms"],
            delta_ms=g["delta_ms"],
            realtime_factor=g["realtime_factor"],
            session_max_s=g["session_max_s"],
        )
    except ValueError as exc:
        raise ConfigError(f"simulator profile: {exc}") from None


def _profile_argv(ns: argparse.Namespace) -> list[str]:
    """The embedded simulator's flags, rebuilt from ``--sim-*`` options."""
    out: list[str] = []
    for k in _PROFILE_FLAGS:
        value = getattr(ns, "sim_" + k)
        if value is not None:
            out += ["--" + k.replace("_", "-"), str(value)]
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtbench",
        description="Load and latency benchmark for Realtime speech-to-speech WebSocket APIs.")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a benchmark (the default command)")
    run.add_argument("--sessions", type=int, default=10, help="concurrent sessions (default 10)")
    run.add_argument("--scenario", type=Path, default=Path("workloads/default.toml"),
                     help="scenario TOML (default workloads/default.toml)")
    run.add_argument("--turns", type=int, default=None, help="turns per session (overrides)")
    run.add_argument("--chunk-ms", type=int, default=None, help="chunk size (overrides)")
    run.add_argument("--url", default=None,
                     help="target WebSocket URL; none = the built-in simulator")
    run.add_argument("--dialect", choices=[d.value for d in Dialect], default="ga")
    run.add_argument("--name", default=None, help="target name (default: region/model)")
    run.add_argument("--region", default=None, help="region label (default 'local')")
    run.add_argument("--model", default=None, help="model/deployment label")
    run.add_argument("--results", type=Path, default=Path("results"),
                     help="results root directory (default ./results)")
    run.add_argument("--run-id", default=None, help="run directory name (default: time + random)")
    _add_profile_args(run, "sim-")
    for action in run._actions:
        if action.dest.startswith("sim_"):
            action.default = None

    serve = sub.add_parser("serve", help="run the Realtime simulator")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 = pick a free port")
    serve.add_argument("--api-key-env", default=None,
                       help="require the key held in this environment variable")
    serve.add_argument("--seed", type=int, default=None, help="random seed for latencies")
    _add_profile_args(serve)
    return parser


def _cmd_run(ns: argparse.Namespace) -> int:
    scenario = load_scenario(ns.scenario)
    if ns.turns is not None:
        if ns.turns < 1:
            raise ConfigError("--turns must be at least 1")
        scenario = replace(scenario, turns_per_session=ns.turns)
    if ns.chunk_ms is not None:
        if ns.chunk_ms <= 0 or ns.chunk_ms % 10:
            raise ConfigError("--chunk-ms must be a positive multiple of 10")
        scenario = replace(scenario, chunk_ms=ns.chunk_ms)
    if ns.sessions < 1:
        raise ConfigError("--sessions must be at least 1")
    dialect = Dialect(ns.dialect)
    extra: dict[str, object] = {}
    if ns.url is None:
        model = ns.model or "sim-realtime"
        sim_args = _profile_argv(ns)
        extra["simulator"] = {"embedded": True, "args": sim_args}
        with embedded_simulator(sim_args) as base:
            path = ("/openai/realtime?api-version=2025-04-01-preview&deployment=" + model
                    if dialect is Dialect.BETA else "/v1/realtime?model=" + model)
            target = Target(name=ns.name or f"local/{model}", url=base + path, dialect=dialect,
                            region=ns.region or "local", model=model)
            outcome = execute(RunPlan(scenario, [target], ns.sessions), ns.results, ns.run_id,
                              extra)
    else:
        model = ns.model or "unknown"
        target = Target(name=ns.name or f"{ns.region or 'default'}/{model}", url=ns.url,
                        dialect=dialect, region=ns.region or "default", model=model,
                        provider="custom")
        outcome = execute(RunPlan(scenario, [target], ns.sessions), ns.results, ns.run_id)
    print_outcome(outcome)
    return outcome.exit_code


def _cmd_serve(ns: argparse.Namespace) -> int:
    api_key = None
    if ns.api_key_env:
        api_key = os.environ.get(ns.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env: environment variable {ns.api_key_env} is not set")
    server = SimServer(SimConfig(host=ns.host, port=ns.port, profile=_profile(ns),
                                 api_key=api_key, seed=ns.seed))

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


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help")):
        args.insert(0, "run")
    ns = build_parser().parse_args(args)
    try:
        if ns.command == "serve":
            return _cmd_serve(ns)
        return _cmd_run(ns)
    except (ConfigError, WorkloadError, ResultsError) as exc:
        print(f"rtbench: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
