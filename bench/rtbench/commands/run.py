"""``rtbench [run]``: benchmark one target (or the embedded simulator)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..config import ConfigError, Target, load_scenario
from ..engine import RunPlan
from ..protocol import Dialect
from ..run import embedded_simulator, execute, print_outcome
from .simflags import add_profile_args, sim_argv, simulator_from

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
    add_profile_args(run, "sim-")


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
    if ns.sessions < 1:
        raise ConfigError("--sessions must be at least 1")
    dialect = Dialect(ns.dialect)
    extra: dict[str, object] = {}
    if ns.url is None:
        model = ns.model or "sim-realtime"
        simulator_from(ns, "sim_")  # fail here, with one line, on a bad profile or plan
        sim_args = sim_argv(ns)
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
