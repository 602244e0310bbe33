"""``rtbench [run]``: benchmark one target (or the embedded simulator)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..config import ConfigError, Target, load_scenario
from ..engine import RunPlan
from ..protocol import Dialect
from ..run import RunOutcome, embedded_simulator, execute, print_outcome
from ..verdict import JUNIT, SUMMARY_JSON, GateConfig, format_verdicts, judge, write_outputs
from .gateflags import add_gate_args, budget_texts, gate_config
from .simflags import add_profile_args, profile_argv

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
    add_gate_args(run)
    add_profile_args(run, "sim-")
    for action in run._actions:
        if action.dest.startswith("sim_"):
            action.default = None


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
    texts = budget_texts(ns, ns.scenario)
    gate_cfg = gate_config(ns, texts)
    extra: dict[str, object] = {"budgets": texts}
    if ns.url is None:
        model = ns.model or "sim-realtime"
        sim_args = profile_argv(ns)
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
        outcome = execute(RunPlan(scenario, [target], ns.sessions), ns.results, ns.run_id,
                          extra)
    return finish(outcome, gate_cfg, ns)


def finish(outcome: RunOutcome, gate_cfg: GateConfig, ns: argparse.Namespace) -> int:
    """Print the table, judge the saved run (as ``rtbench gate`` would), write the verdict."""
    print_outcome(outcome)
    result = judge(outcome.run_dir, gate_cfg)
    write_outputs(outcome.run_dir, result, [outcome.run_dir / JUNIT, ns.junit],
                  [outcome.run_dir / SUMMARY_JSON, ns.summary_json])
    if result.verdicts:
        print(format_verdicts(result.verdicts))
    return result.exit_code
