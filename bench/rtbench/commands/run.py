"""``rtbench [run]``: benchmark real targets (a targets file, one-off flags, a URL) or the
embedded simulator.

The flags become one :class:`RunOptions` (:func:`run_options`), checked before any session
starts; ``sweep`` and ``calibrate`` build the same object and run it level by level.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.trace import write_trace
from ..analysis.verdict import (
    JUNIT,
    SUMMARY_JSON,
    GateConfig,
    format_verdicts,
    judge,
    status_line,
    write_outputs,
)
from ..client.engine import RunPlan
from ..client.workload import load_utterances
from ..config.scenario import ConfigError, Scenario, Target
from ..orchestrate.execute import RunOutcome, execute, print_outcome
from .destination import Destination, Embedded, add_destination_args, destination_from, open_destination
from .distflags import Dist, add_dist_args, dist_from, dist_runner
from .gateflags import add_gate_args, budget_texts, gate_config
from .runflags import (
    Live,
    Load,
    Output,
    add_live_args,
    add_load_args,
    add_output_args,
    add_scenario_args,
    add_sessions_arg,
    live_from,
    load_from,
    output_from,
    scenario_from,
)

HELP = "run a benchmark (the default command)"


def add_arguments(run: argparse.ArgumentParser, outputs: bool = True, sessions: bool = True) -> None:
    """Every flag of ``run``; ``sweep`` takes them too, but for the per-run outputs
    (``outputs=False``: no ``--junit``, ``--summary-json``, ``--no-report``) and its own
    ``--sessions`` (``sessions=False``)."""
    if sessions:
        add_sessions_arg(run)
    add_scenario_args(run)
    add_output_args(run)
    add_destination_args(run)
    add_load_args(run)
    add_gate_args(run, outputs)
    add_live_args(run)
    if outputs:
        run.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_dist_args(run)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """One run as the flags describe it, read and checked once."""

    scenario: Scenario
    destination: Destination
    sessions: int = 10
    load: Load = field(default_factory=Load)
    output: Output = field(default_factory=Output)
    gate: GateConfig = field(default_factory=GateConfig)
    live: Live = field(default_factory=Live)
    dist: Dist = field(default_factory=Dist)
    budget_texts: tuple[str, ...] = ()        # as given, for the manifest

    def manifest_extra(self) -> dict[str, object]:
        """What the manifest records of these options beyond the plan itself."""
        if isinstance(self.destination, Embedded):
            return {"budgets": list(self.budget_texts),
                    "simulator": {"embedded": True, "args": list(self.destination.argv),
                                  "tls": self.destination.tls,
                                  "latency": dict(self.destination.latency)}}
        return {"budgets": list(self.budget_texts), "interleave": self.load.interleave,
                "seed": self.load.seed}

    def plan(self, targets: list[Target], sessions: int | None = None,
             rate: float | None = None) -> RunPlan:
        """The run plan; ``sessions``/``rate`` override the flags (a sweep's load level).
        Checks the session each target gets (a GA-only field on a beta target is one line)."""
        for target in targets:
            self.scenario.session_for(target)
        n = sessions if sessions is not None else self.load.sessions(self.sessions, len(targets))
        return RunPlan(self.scenario, targets, n, self.load.model(n, rate), self.load.interleave,
                       self.load.seed)

    def check(self) -> None:
        """What can still fail once processes start, checked before any does (the embedded
        simulator included): the session count against the targets and workers, the session
        each target gets, and every utterance's audio (one line each, exit 2)."""
        targets = (list(self.destination) if not isinstance(self.destination, Embedded)
                   else [self.destination.target("ws://127.0.0.1:0")])
        dist_runner(self.dist, self.plan(targets).sessions)
        load_utterances(self.scenario)

    def execute(self, targets: list[Target], root: Path, run_id: str | None,
                sessions: int | None = None, rate: float | None = None) -> RunOutcome:
        """Run the plan (at a sweep's level) into ``root/run_id``, watched and scaled out."""
        plan = self.plan(targets, sessions, rate)
        outcome = execute(plan, root, run_id, self.manifest_extra(),
                          self.output.saturation_threshold_ms,
                          self.live.watchers(self.gate.budgets),
                          dist_runner(self.dist, plan.sessions))
        if self.output.trace:   # from the saved tables, after the run: off the hot path
            print(f"trace: {write_trace(outcome.run_dir)}")
        return outcome


def run_options(ns: argparse.Namespace) -> RunOptions:
    """The flags of ``run`` (or ``sweep``) as a :class:`RunOptions`, every flag checked here
    (the session count against the targets and workers when a plan is made)."""
    scenario = scenario_from(ns.scenario, ns.turns, ns.chunk_ms, ns.reasoning_effort)
    texts = budget_texts(ns, ns.scenario)
    gate = gate_config(ns, texts)
    live, dist = live_from(ns, gate.budgets), dist_from(ns)
    if live.outs and (dist.workers is not None or dist.ray is not None):
        raise ConfigError("--out streams from this process's sessions: it cannot be combined "
                          "with --workers or --ray")
    return RunOptions(scenario, destination_from(ns), ns.sessions, load_from(ns), output_from(ns),
                      gate, live, dist, tuple(texts))


def handle(ns: argparse.Namespace) -> int:
    opts = run_options(ns)
    opts.check()
    with open_destination(opts.destination) as targets:
        outcome = opts.execute(targets, opts.output.results, opts.output.run_id)
    return finish(outcome, opts.gate, ns.junit, ns.summary_json, not ns.no_report)


def finish(outcome: RunOutcome, gate_cfg: GateConfig, junit: Path | None,
           summary_json: Path | None, report: bool) -> int:
    """Print the table, judge the saved run (as ``rtbench gate`` would), write the verdict."""
    print_outcome(outcome)
    result = judge(outcome.run_dir, gate_cfg)
    write_outputs(outcome.run_dir, result, [outcome.run_dir / JUNIT, junit],
                  [outcome.run_dir / SUMMARY_JSON, summary_json])
    if result.verdicts:
        print(format_verdicts(result.verdicts))
    if (line := status_line(result)) is not None:
        print(line)
    if report:
        # Also for a stopped run: it is the run most in need of a page saying what happened.
        from ..analysis.report import write_report  # matplotlib is slow to import: only when asked

        print(f"report: {write_report(outcome.run_dir)}")
    return result.exit_code
