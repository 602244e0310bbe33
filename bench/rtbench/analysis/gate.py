"""Budgets: parse ``ttfa.p95{region=eastus2} < 800ms`` and judge a run against them (pure).

Syntax (like k6 thresholds, one budget per string)::

    METRIC[.STAT][{key=value,...}] OP VALUE[UNIT]

* latency metrics (every HDR histogram a run records; ``ttfa`` is short for ``ttfa_ms``) take a
  STAT: ``p50`` ``p90`` ``p95`` ``p99`` ``p99.9`` (or k6's ``p(95)``), ``max``, ``min``,
  ``mean``, ``count``; VALUE in ``ms`` (default), ``s`` or ``us``;
* rates ``error_rate``, ``session_error_rate`` and ``premature_rate``: VALUE as ``1%`` or a
  fraction ``0.01``;
* counts ``turns``, ``turns_ok``, ``turns_failed``, ``errors``, ``sessions_with_errors``;
* filters ``region``, ``model``, ``target``, ``effort`` (the reasoning effort a target's
  sessions ask for) on any metric; ``errors`` also takes ``code``,
  ``phase`` and ``kind``; OP is ``<`` ``<=`` ``>`` ``>=`` ``==``.

A budget that cannot be checked (no sample, no target matching its filters) fails: a gate that
passes because it saw nothing is worse than none. While a run is going, :func:`evaluate` with
``final=False`` also says whether a budget is *certainly* broken already (its final value can
only land on the wrong side), which is what abort-on-fail acts on.

A percentile or mean is never certain while the run goes; abort-on-fail treats it as broken
once the targets it covers have completed ``min_turns`` turns (``--abort-min-turns``), the
evidence the user chose. The unit is turns for every target metric, whether it is sampled per
turn (TTFA) or per session (connect): a count of the metric's own samples would let a
per-session metric abort on the connection burst alone. A percentile also needs five samples
beyond it (p50: 10, p95: 100, p99: 500; :func:`~.bootstrap.min_samples_for_quantile`): the p99
of 20 turns is their maximum, so one slow turn would abort a run whose p99 over all its turns
keeps the budget.

The generator's own health (:data:`GENERATOR_HEALTH`: event-loop lag, probed every 10 ms, and
chunk send lateness, one sample per chunk) is never judged early: its samples pile up fastest
exactly while sessions connect, the one moment its tail is worst, so an early p99 says how the
start went, not how the run will end. Those budgets are judged on the whole run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from ..config.files import read_toml
from ..config.scenario import ConfigError
from ..metrics.recorder import (
    ALL_METRICS,
    GENERATOR,
    LOOP_LAG,
    SEND_LATENESS,
    Recorder,
    new_histogram,
    value_at_percentile,
)
from ..metrics.tallies import Tally, TargetInfo, not_run_turns
from ..metrics.units import LATENCY_UNITS_MS
from .bootstrap import min_samples_for_quantile

LATENCIES = (*ALL_METRICS, LOOP_LAG)
RATES = ("error_rate", "session_error_rate", "premature_rate")
COUNTS = ("turns", "turns_ok", "turns_failed", "errors", "sessions_with_errors")
TARGET_KEYS = ("region", "model", "target", "effort")
ERROR_KEYS = ("code", "phase", "kind")
#: The generator's health, not the target's: percentiles judged on the whole run only.
GENERATOR_HEALTH = (LOOP_LAG, SEND_LATENESS)
_OP_RE = re.compile(r"<=|>=|==|<|>")
_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.(.+?))?\s*(?:\{(.*)\})?$")
_STAT_RE = re.compile(r"^p\(?(\d+(?:\.\d+)?)\)?$")
_VALUE_RE = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(ms|us|µs|s|%)?$")
#: Latency units in ms (None: a bare number is ms); the CLI's duration flags extend it.
Fail = Callable[[str], NoReturn]


class BudgetError(ConfigError):
    """A budget string that cannot be parsed (one line, names the budget)."""


@dataclass(frozen=True, slots=True)
class Budget:
    text: str
    metric: str                              # canonical: ``ttfa_ms``, ``error_rate``, ``errors``
    stat: str | None                         # ``p95``, ``max``, ``min``, ``mean``, ``count``
    filters: tuple[tuple[str, str], ...]
    op: str
    limit: float                             # ms for latencies, fraction for rates, else count

    @property
    def kind(self) -> str:
        if self.metric in RATES:
            return "rate"
        if self.metric in COUNTS or self.stat == "count":
            return "count"
        return "latency"

    def target_filters(self) -> dict[str, str]:
        return {k: v for k, v in self.filters if k in TARGET_KEYS}

    def error_filters(self) -> dict[str, str]:
        return {k: v for k, v in self.filters if k in ERROR_KEYS}


def _canonical_metric(name: str) -> str | None:
    for candidate in (name, name + "_ms"):
        if candidate in LATENCIES or candidate in RATES or candidate in COUNTS:
            return candidate
    return None


def _parse_stat(stat: str | None, fail: Fail) -> str | None:
    if stat is None:
        return None
    stat = stat.strip()
    if stat in ("max", "min", "mean", "count"):
        return stat
    if stat == "avg":
        return "mean"
    if stat == "med":
        return "p50"
    m = _STAT_RE.match(stat)
    if m is None:
        fail(f"unknown statistic {stat!r} (use p50, p95, p99, p99.9, max, min, mean or count)")
    q = float(m.group(1))
    if not 0.0 < q <= 100.0:
        fail(f"percentile {stat!r} must be within (0, 100]")
    return f"p{q:g}"


def _parse_filters(raw: str | None, allowed: Sequence[str], fail: Fail) -> tuple[tuple[str, str], ...]:
    if raw is None or not raw.strip():
        return ()
    out = []
    for part in raw.split(","):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip().strip("'\"")
        if not eq or not key or not value:
            fail(f"filter {part.strip()!r} must be key=value")
        if key not in allowed:
            fail(f"unknown filter {key!r} (allowed here: {', '.join(allowed)})")
        out.append((key, value))
    return tuple(sorted(out))


def parse_budget(text: str) -> Budget:
    """Parse one budget string; a :class:`BudgetError` names the budget and the problem."""

    def fail(why: str) -> NoReturn:
        raise BudgetError(f"budget {text.strip()!r}: {why}")

    m = _OP_RE.search(text)
    if m is None:
        fail("no comparison (expected <, <=, >, >= or ==)")
    left, op, right = text[:m.start()].strip(), m.group(0), text[m.end():].strip()
    if _OP_RE.search(right):
        fail("more than one comparison")
    nm = _NAME_RE.match(left)
    if nm is None:
        fail(f"cannot read the metric {left!r} (expected metric.stat{{key=value}})")
    metric = _canonical_metric(nm.group(1))
    if metric is None:
        fail(f"unknown metric {nm.group(1)!r} (known: "
             + ", ".join([m.removesuffix("_ms") for m in LATENCIES] + list(RATES) + list(COUNTS))
             + ")")
    stat = _parse_stat(nm.group(2), fail)
    if metric in LATENCIES:
        if stat is None:
            fail(f"{nm.group(1)} needs a statistic, e.g. {nm.group(1)}.p95")
        allowed: Sequence[str] = () if metric == LOOP_LAG else TARGET_KEYS
    else:
        if stat is not None:
            fail(f"{metric} takes no statistic")
        allowed = TARGET_KEYS + ERROR_KEYS if metric == "errors" else TARGET_KEYS
    filters = _parse_filters(nm.group(3), allowed, fail)
    vm = _VALUE_RE.match(right)
    if vm is None:
        fail(f"cannot read the limit {right!r} (expected a number with an optional unit)")
    number, unit = float(vm.group(1)), vm.group(2)
    budget = Budget(text.strip(), metric, stat, filters, op, 0.0)
    if budget.kind == "latency":
        if unit == "%":
            fail("'%' is not a unit for a latency (use ms, s or us)")
        limit = number * LATENCY_UNITS_MS[unit]
    elif budget.kind == "rate":
        if unit not in (None, "%"):
            fail(f"{unit!r} is not a unit for a rate (use % or a fraction)")
        limit = number / 100.0 if unit == "%" else number
    else:
        if unit is not None:
            fail(f"a count takes no unit, got {unit!r}")
        limit = number
    return Budget(text.strip(), metric, stat, filters, op, limit)


def parse_budgets(texts: Iterable[str]) -> list[Budget]:
    return [parse_budget(t) for t in texts]


def load_budget_file(path: Path) -> list[str]:
    """Budget strings from ``[budgets] checks = [...]`` in a TOML file (a scenario or its own)."""
    doc = read_toml(path, "budgets", ConfigError)
    table = doc.get("budgets", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: budgets must be a table with checks = [...]")
    unknown = sorted(set(table) - {"checks"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [budgets]")
    checks = table.get("checks", [])
    if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
        raise ConfigError(f"{path}: budgets.checks must be a list of strings")
    return list(checks)


# -- what a run observed ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunData:
    """Everything a budget is judged on."""

    targets: tuple[TargetInfo, ...]
    turns_per_session: int
    recorder: Recorder
    tally: Tally
    final: bool = True                       # False while the run is still going
    min_turns: int = 1                       # live: no percentile verdict on fewer turns done

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], turns: pd.DataFrame, errors: pd.DataFrame,
                      recorder: Recorder, sessions: pd.DataFrame | None = None) -> RunData:
        targets = targets_from_manifest(manifest)
        tps = turns_per_session(manifest)
        skipped = None if sessions is None else not_run_turns(
            sessions, targets, tps, stopped=manifest.get("status") in ("partial", "aborted"))
        return cls(targets, tps, recorder, Tally.from_tables(turns, errors, targets, tps, skipped))


def targets_from_manifest(manifest: Mapping[str, Any]) -> tuple[TargetInfo, ...]:
    return tuple(TargetInfo(str(t["name"]), str(t["region"]), str(t["model"]), int(t["sessions"]),
                            str(t.get("effort") or ""))
                 for t in manifest.get("targets", []))


def turns_per_session(manifest: Mapping[str, Any]) -> int:
    load = manifest.get("load_model") or {}
    if "turns_per_session" in load:
        return int(load["turns_per_session"])
    return int(manifest.get("scenario", {}).get("turns_per_session", 1))


# -- verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """One check's outcome; also used for baseline checks so reports treat both alike."""

    name: str
    passed: bool
    observed: float | None                   # None: nothing to judge on
    limit: str
    message: str
    samples: int = 0
    certain: bool = False                    # live only: broken whatever happens next
    group: str = "budgets"
    observed_text: str = "none"              # observed with its unit, e.g. ``812.0 ms``


def _holds(op: str, value: float, limit: float) -> bool:
    return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit,
            "==": value == limit}[op]


def _certainly_broken(op: str, lo: float, hi: float, limit: float) -> bool:
    """True if no final value within ``[lo, hi]`` can satisfy ``op limit``."""
    if op in ("<", "<="):
        return not _holds(op, lo, limit)
    if op in (">", ">="):
        return not _holds(op, hi, limit)
    return lo > limit or hi < limit or (lo == hi and lo != limit)


def format_value(budget: Budget, value: float) -> str:
    if budget.kind == "rate":
        return f"{value * 100:.3g}%"
    if budget.kind == "count":
        return f"{value:g}"
    return f"{value:.1f} ms"


def _observe(budget: Budget, data: RunData) -> tuple[float | None, float, float, int, str]:
    """(observed, lower bound, upper bound of the final value, samples, why-none)."""
    inf = math.inf
    if budget.metric == LOOP_LAG:
        names = [GENERATOR]
    else:
        matched = [t for t in data.targets if t.matches(budget.target_filters())]
        if not matched:
            return None, -inf, inf, 0, _no_target(budget, data.targets)
        names = [t.name for t in matched]
    if budget.kind == "latency" or budget.stat == "count":
        hist = new_histogram()
        for name in names:
            hist.add(data.recorder.series(name, budget.metric).histogram)
        n = int(hist.get_total_count())
        if budget.stat == "count":
            return float(n), float(n), (float(n) if data.final else inf), n, ""
        if n == 0:
            return None, -inf, inf, 0, f"no {budget.metric.removesuffix('_ms')} sample"
        stat = budget.stat
        if stat == "max":
            v = hist.get_max_value() / 1000.0
            return v, v, (v if data.final else inf), n, ""
        if stat == "min":
            v = hist.get_min_value() / 1000.0
            return v, (v if data.final else -inf), v, n, ""
        v = (hist.get_mean_value() if stat == "mean"
             else value_at_percentile(hist, float(str(stat)[1:]))) / 1000.0
        if data.final or _enough_evidence(budget, data, names, n):
            return v, v, v, n, ""
        return v, -inf, inf, n, ""
    tallies = [data.tally.of(name) for name in names]
    planned_sessions = sum(t.sessions for t in data.targets if t.name in names)
    planned = planned_sessions * data.turns_per_session
    ok = sum(t.turns_ok for t in tallies)
    failed = sum(t.turns_failed for t in tallies)
    lost = failed + sum(t.turns_unattempted for t in tallies)
    rows = ok + failed
    if budget.metric == "error_rate":
        if planned == 0:
            return None, -inf, inf, 0, "no planned turns"
        lo, hi = lost / planned, 1.0 - ok / planned
        return lo, lo, (lo if data.final else hi), planned, ""
    if budget.metric == "premature_rate":  # over the turns that ran, as in summary.csv
        if rows == 0:
            return None, -inf, inf, 0, "no turns"
        early = sum(t.turns_premature for t in tallies)
        # live: the remaining turns may all answer on time (as low as early / planned) or not
        lo = early / rows if data.final else early / max(planned, rows)
        return early / rows, lo, (early / rows if data.final else 1.0), rows, ""
    if budget.metric == "session_error_rate":
        if planned_sessions == 0:
            return None, -inf, inf, 0, "no planned sessions"
        v = sum(len(t.sessions_with_errors) for t in tallies) / planned_sessions
        return v, v, (v if data.final else 1.0), planned_sessions, ""
    if budget.metric == "errors":
        flt = budget.error_filters()
        n = sum(count for t in tallies for (phase, kind, code), count in t.errors.items()
                if all({"phase": phase, "kind": kind, "code": code}[k] == v for k, v in flt.items()))
    elif budget.metric == "sessions_with_errors":
        n = sum(len(t.sessions_with_errors) for t in tallies)
    elif budget.metric == "turns_failed":
        n = failed
    elif budget.metric == "turns_ok":
        return float(ok), ok, (ok if data.final else planned - lost), rows, ""
    else:  # turns
        return float(rows), rows, (rows if data.final else planned - lost + failed), rows, ""
    return float(n), n, (n if data.final else inf), rows, ""


def _enough_evidence(budget: Budget, data: RunData, names: Sequence[str], samples: int) -> bool:
    """Live: may a percentile or mean of ``budget`` over ``samples`` values be taken as the
    run's own? Only once the targets it covers completed ``min_turns`` turns and a percentile
    has five samples beyond it, and never for the generator's health (see the module
    docstring)."""
    if budget.metric in GENERATOR_HEALTH:
        return False
    q = float(str(budget.stat)[1:]) / 100.0 if str(budget.stat).startswith("p") else None
    if q is not None and q < 1.0 and samples < min_samples_for_quantile(q):
        return False
    return sum(data.tally.of(name).turns_ok for name in names) >= data.min_turns


def evaluate_one(budget: Budget, data: RunData) -> Verdict:
    observed, lo, hi, samples, why = _observe(budget, data)
    limit_text = f"{budget.op} {format_value(budget, budget.limit)}"
    label = budget.text
    if observed is None:
        # Failed, never skipped: a gate that passes because it saw nothing is worse than none.
        return Verdict(label, False, None, limit_text,
                       f"{label}: matched no data ({why}): cannot be checked, so it fails",
                       samples, certain=False, observed_text="no data")
    passed = _holds(budget.op, observed, budget.limit)
    certain = (not passed) if data.final else _certainly_broken(budget.op, lo, hi, budget.limit)
    shown = format_value(budget, observed)
    verb = "ok" if passed else "BROKEN"
    return Verdict(label, passed, observed, limit_text,
                   f"{label}: observed {shown}, limit {limit_text} ({verb}, n={samples})",
                   samples, certain=certain, observed_text=shown)


def _no_target(budget: Budget, targets: Sequence[TargetInfo]) -> str:
    """Why a budget's filters match nothing: what they asked for and what the run had, so a
    typo'd region (or a budget written for other targets) is plain to see."""
    wanted = ", ".join(f"{k}={v}" for k, v in budget.target_filters().items())
    had = "; ".join(f"{t.name} (region {t.region}, model {t.model})" for t in targets) or "none"
    return f"no target has {wanted}; the run's targets: {had}"


def evaluate(budgets: Iterable[Budget], data: RunData) -> list[Verdict]:
    return [evaluate_one(b, data) for b in budgets]
