"""``rtbench [run]``: benchmark real targets (a targets file, one-off flags, a URL) or the
embedded simulator."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..config import ConfigError, Target, load_scenario
from ..engine import RunPlan
from ..load import LoadModel
from ..protocol import Dialect
from ..run import embedded_simulator, execute, print_outcome
from .distflags import add_dist_args, dist_runner
from .simflags import add_profile_args, profile_argv
from .targetflags import add_target_args, resolve_targets, total_sessions

HELP = "run a benchmark (the default command)"


def add_arguments(run: argparse.ArgumentParser) -> None:
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
    run.add_argument("--saturation-threshold-ms", type=float, default=5.0,
                     help="p99 loop lag / send lateness above which the generator is reported "
                          "saturated (default 5)")
    load = run.add_argument_group("load model")
    load.add_argument("--load", choices=["closed", "open"], default="closed",
                      help="closed: --sessions concurrent; open: arrivals at --rate (default closed)")
    load.add_argument("--rate", type=float, default=0.0, help="open model: sessions per second")
    load.add_argument("--arrival", choices=["constant", "poisson"], default="constant",
                      help="open model: arrival spacing (default constant)")
    load.add_argument("--ramp-up", type=float, default=0.0, metavar="S",
                      help="closed model: spread the slots' first starts over S seconds")
    load.add_argument("--duration", type=float, default=None, metavar="S",
                      help="stop starting sessions/turns after S seconds; closed slots reconnect "
                           "until then (soak)")
    load.add_argument("--total-sessions", type=int, default=None,
                      help="open model: stop after this many arrivals")
    load.add_argument("--retry", type=int, default=0, metavar="N",
                      help="retry a session that failed retryably before its first turn, up to N "
                           "times (default 0: off); attempts are reported separately")
    load.add_argument("--retry-backoff", type=float, default=0.5, metavar="S",
                      help="first retry delay, doubled per attempt, jittered, capped at 8 s")
    add_target_args(run)
    add_dist_args(run)
    add_profile_args(run, "sim-")
    for action in run._actions:
        if action.dest.startswith("sim_"):
            action.default = None


def load_model(ns: argparse.Namespace, sessions: int) -> LoadModel:
    return LoadModel(kind=ns.load, sessions=sessions, rate_per_s=ns.rate, arrival=ns.arrival,
                     ramp_up_s=ns.ramp_up, duration_s=ns.duration,
                     total_sessions=ns.total_sessions, retries=ns.retry,
                     backoff_s=ns.retry_backoff, seed=ns.seed)


def handle(ns: argparse.Namespace) -> int:
    scenario = load_scenario(ns.scenario)
    if ns.turns is not None:
        if ns.turns < 1:
            raise ConfigError("--turns must be at least 1")
        scenario = replace(scenario, turns_per_session=ns.turns)
    if ns.chunk_ms is not None:
        if ns.chunk_ms <= 0 or ns.chunk_ms % 10:
            raise ConfigError("--chunk-ms must be a positive multiple of 10")
        scenario = replace(scenario, chunk_ms=ns.chunk_ms)
    dialect = Dialect(ns.dialect)
    extra: dict[str, object] = {}
    targets = resolve_targets(ns)
    n = ns.sessions if targets is None else total_sessions(ns, len(targets))
    runner = dist_runner(ns, n)
    if targets is None:
        model = ns.model or "sim-realtime"
        sim_args = profile_argv(ns)
        extra["simulator"] = {"embedded": True, "args": sim_args}
        with embedded_simulator(sim_args) as base:
            path = ("/openai/realtime?api-version=2025-04-01-preview&deployment=" + model
                    if dialect is Dialect.BETA else "/v1/realtime?model=" + model)
            target = Target(name=ns.name or f"local/{model}", url=base + path, dialect=dialect,
                            region=ns.region or "local", model=model)
            plan = RunPlan(scenario, [target], ns.sessions, load_model(ns, ns.sessions),
                           seed=ns.seed)
            outcome = execute(plan, ns.results, ns.run_id, extra, ns.saturation_threshold_ms,
                              runner)
    else:
        plan = RunPlan(scenario, targets, n, load_model(ns, n), ns.interleave, ns.seed)
        outcome = execute(plan, ns.results, ns.run_id, {"interleave": ns.interleave, "seed": ns.seed},
                          ns.saturation_threshold_ms, runner)
    print_outcome(outcome)
    return outcome.exit_code
