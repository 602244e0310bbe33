"""Judge a saved run: budgets and baseline -> verdicts, ``junit.xml``, ``summary.json``, exit code.

``rtbench run`` and ``rtbench gate`` both judge the run *directory* (never in-memory state), so
re-gating a saved run offline gives exactly the verdict the run gave.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from ..config.scenario import ConfigError
from ..process.exitcodes import EXIT_GATE_FAILED, EXIT_INCOMPLETE, EXIT_NOTHING_MEASURED, EXIT_OK
from ..results.store import SUMMARY_CSV, load_manifest, load_recorder, load_sessions, load_tables
from . import baseline as baseline_mod
from .gate import Budget, RunData, Verdict, evaluate
from .junit import junit_xml

JUNIT = "junit.xml"
SUMMARY_JSON = "summary.json"


def parse_fraction(text: str, what: str) -> float:
    """``10%`` or ``0.1`` -> 0.1."""
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a percentage like 10% or a fraction, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{what} must not be negative, got {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class GateConfig:
    budgets: tuple[Budget, ...] = ()
    baseline: Path | None = None
    tolerance: float = 0.10
    baseline_metrics: tuple[str, ...] | None = None   # None: ttfa_ms + budgeted latencies
    resamples: int = 1000
    seed: int = 0
    allow_partial: bool = False     # pass a run whose status is not "complete" (exit 0, not 5)

    def compared_metrics(self) -> tuple[str, ...]:
        if self.baseline_metrics is not None:
            return self.baseline_metrics
        wanted = ["ttfa_ms"] + [b.metric for b in self.budgets if b.kind == "latency"]
        return tuple(m for m in dict.fromkeys(wanted) if m in baseline_mod.ROW_METRICS)


def baseline_metrics_arg(text: str) -> tuple[str, ...]:
    out = []
    for raw in text.split(","):
        name = raw.strip()
        metric = name if name in baseline_mod.ROW_METRICS else name + "_ms"
        if metric not in baseline_mod.ROW_METRICS:
            known = ", ".join(m.removesuffix("_ms") for m in baseline_mod.ROW_METRICS)
            raise ConfigError(f"--baseline-metrics: {name!r} has no per-turn samples (use {known})")
        out.append(metric)
    return tuple(out)


@dataclass(slots=True)
class GateResult:
    run_id: str
    status: str
    measured: int                         # turns that completed ok
    verdicts: list[Verdict] = field(default_factory=list)
    aborted: dict[str, Any] | None = None
    allow_partial: bool = False
    reason: str | None = None            # why a run is not complete (manifest stopped_by)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def exit_code(self) -> int:
        """4 for a broken budget (and for an --abort-on-fail stop, even before any turn ended),
        3 when nothing was measured, 5 for a run that did not finish as planned, else 0."""
        if self.aborted or not self.passed:
            return EXIT_GATE_FAILED
        if self.measured == 0:
            return EXIT_NOTHING_MEASURED
        if not self.complete and not self.allow_partial:
            return EXIT_INCOMPLETE
        return EXIT_OK


def judge(run_dir: Path, cfg: GateConfig) -> GateResult:
    manifest = load_manifest(run_dir)
    turns, errors = load_tables(run_dir)
    data = RunData.from_manifest(manifest, turns, errors, load_recorder(run_dir),
                                 load_sessions(run_dir))
    verdicts = evaluate(cfg.budgets, data)
    if cfg.baseline is not None:
        load_manifest(cfg.baseline)   # a clear error if it is not a run directory
        base_turns, _ = load_tables(cfg.baseline)
        verdicts += baseline_mod.compare(base_turns, turns, cfg.compared_metrics(), cfg.tolerance,
                                         resamples=cfg.resamples, seed=cfg.seed)
    measured = int((turns["status"] == "ok").sum()) if len(turns) else 0
    return GateResult(str(manifest.get("run_id", run_dir.name)), str(manifest.get("status", "?")),
                      measured, verdicts, manifest.get("aborted"), cfg.allow_partial,
                      manifest.get("stopped_by"))


#: The JUnit test case of the run itself (group ``run``).
RUN_CHECK = "run completed with turns measured"


def run_verdict(result: GateResult) -> Verdict:
    """The run itself as a check, failing exactly when the exit code says the run failed for
    a reason of its own (nothing measured, aborted, stopped early). JUnit readers take a file
    with no test case for "no tests ran", so a run with no budgets must still say how it went."""
    if result.aborted or result.status == "aborted":
        why = "; ".join((result.aborted or {}).get("messages", [])) or "a budget was broken"
        return Verdict(RUN_CHECK, False, None, "status complete",
                       f"run aborted by --abort-on-fail: {why}", result.measured, group="run",
                       observed_text="aborted")
    if result.measured == 0:
        return Verdict(RUN_CHECK, False, 0.0, "status complete",
                       f"nothing was measured: no turn completed (status {result.status}, "
                       f"exit {EXIT_NOTHING_MEASURED}; errors.jsonl says why)", 0, group="run",
                       observed_text="0 turns")
    why = f" ({result.reason})" if result.reason else ""
    if not result.complete and not result.allow_partial:
        return Verdict(RUN_CHECK, False, float(result.measured), "status complete",
                       f"run status {result.status}{why}: its {result.measured} turns cover part "
                       f"of the plan (exit {EXIT_INCOMPLETE}; --allow-partial accepts it)",
                       result.measured, group="run", observed_text=f"status {result.status}")
    accepted = "" if result.complete else ", accepted by --allow-partial"
    return Verdict(RUN_CHECK, True, float(result.measured), "status complete",
                   f"run {result.status}{why}{accepted}: {result.measured} turns measured",
                   result.measured, group="run", observed_text=f"status {result.status}")


def summary_document(run_dir: Path, result: GateResult) -> dict[str, Any]:
    csv = run_dir / SUMMARY_CSV
    groups = pd.read_csv(csv).to_dict("records") if csv.exists() else []
    return {
        "run_id": result.run_id,
        "status": result.status,
        "verdict": "pass" if result.passed else "fail",
        "exit_code": result.exit_code,
        "turns_ok": result.measured,
        "aborted": result.aborted,
        "checks": [{"name": v.name, "group": v.group, "passed": v.passed, "observed": v.observed,
                    "limit": v.limit, "samples": v.samples, "message": v.message}
                   for v in result.verdicts],
        "groups": groups,
    }


def write_outputs(run_dir: Path, result: GateResult, junit_paths: Sequence[Path | None] = (),
                  json_paths: Sequence[Path | None] = ()) -> None:
    """Write JUnit XML (the run's own check, then every budget and baseline check) and the
    summary JSON to each path given (``None`` entries are skipped)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    xml = junit_xml([run_verdict(result), *result.verdicts], result.run_id, now)
    doc = orjson.dumps(summary_document(run_dir, result),
                       option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    for path in junit_paths:
        if path is not None:
            path.write_text(xml)
    for path in json_paths:
        if path is not None:
            path.write_bytes(doc)


def status_line(result: GateResult) -> str | None:
    """One line for a run that did not finish as planned (what the gate then does with it)."""
    if result.complete or result.aborted or result.status == "aborted":
        return None
    why = f" ({result.reason})" if result.reason else ""
    verdict = ("accepted (--allow-partial)" if result.allow_partial
               else f"exit {EXIT_INCOMPLETE}; --allow-partial accepts it")
    return f"run status: {result.status}{why}: its numbers cover part of the plan; {verdict}"


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    lines = [("PASS " if v.passed else "FAIL ") + v.message for v in verdicts]
    failed = sum(not v.passed for v in verdicts)
    if verdicts:
        lines.append(f"gate: {len(verdicts) - failed} of {len(verdicts)} checks passed")
    return "\n".join(lines)
