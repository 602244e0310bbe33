"""Compare targets (or runs): TTFA percentiles and error rate, B minus A, with bootstrap intervals.

The unit resampled is the turn: a group's TTFA sample is the ``ttfa_ms`` (first audible sample)
of its completed turns, premature ones left out; after a preamble, the answer's
(``ttfa_answer_ms``) is compared too,
its error sample one 0/1 outcome per *planned* turn (turns never started because the session
failed count as failures, as in ``summary.csv``). A difference whose interval contains zero is
reported as "not resolvable": the data cannot tell the two apart. Tail percentiles also need
enough turns beyond them (:func:`~rtbench.analysis.bootstrap.min_samples_for_quantile`); with fewer, the
verdict says so instead of trusting an interval that is too narrow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..config.scenario import ConfigError
from ..results.store import ResultsError, load_manifest, load_tables
from .bootstrap import Statistic, bootstrap_diff, min_samples_for_quantile, quantile, resolvable

#: What a group is: a target, a region/model, or a reasoning effort (§10.2: a dimension to
#: compare; targets whose sessions set none are the group ``unset``).
BY = ("target", "group", "effort")
NO_EFFORT = "unset"
QUANTILES = {"ttfa_p50": 0.50, "ttfa_p95": 0.95, "ttfa_p99": 0.99,
             "ttfa_answer_p50": 0.50, "ttfa_answer_p95": 0.95, "ttfa_answer_p99": 0.99}
COLUMNS = ("a_run", "a", "b_run", "b", "metric", "n_a", "n_b", "a_value", "b_value", "diff",
           "ci_lo", "ci_hi", "rel_diff", "verdict")


def _mean(x: NDArray[np.float64], axis: int) -> Any:
    return np.mean(x, axis=axis)


@dataclass(frozen=True, slots=True)
class Group:
    """One side of a comparison: a target (or region × model group, or effort) of one run."""

    run: str
    key: str
    ttfa_ms: NDArray[np.float64]
    failed: NDArray[np.float64]  # one 0/1 per planned turn
    #: Empty when the run did not measure it (runs before rtbench reported the answer item).
    ttfa_answer_ms: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, slots=True)
class Settings:
    n_resamples: int = 2000
    seed: int = 0
    confidence: float = 0.95


def load_groups(run_dir: Path, by: str = "target") -> dict[str, Group]:
    """The run's groups, in manifest order: per target name, per ``region/model``, or per
    reasoning effort (the manifest's per-target ``effort``)."""
    if by not in BY:
        raise ConfigError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    if not run_dir.is_dir():
        raise ResultsError(f"run directory not found: {run_dir}")
    manifest = load_manifest(run_dir)
    turns, _ = load_tables(run_dir)
    per_turn = int(manifest["scenario"]["turns_per_session"])
    members: dict[str, list[Mapping[str, Any]]] = {}
    for t in manifest["targets"]:
        key = (str(t["name"]) if by == "target" else f"{t['region']}/{t['model']}"
               if by == "group" else str(t.get("effort") or NO_EFFORT))
        members.setdefault(key, []).append(t)
    run = str(manifest.get("run_id", run_dir.name))
    groups = {}
    for key, targets in members.items():
        names = {str(t["name"]) for t in targets}
        ok = turns[turns["target"].isin(names) & (turns["status"] == "ok")]
        planned = sum(int(t["sessions"]) for t in targets) * per_turn
        timed = ok[~ok["premature"].astype(bool)] if "premature" in ok else ok
        failed = np.r_[np.zeros(len(ok)), np.ones(max(0, planned - len(ok)))]
        groups[key] = Group(run, key, _sample(timed, "ttfa_ms"), failed,
                            _sample(timed, "ttfa_answer_ms"))
    return groups


def _sample(turns: pd.DataFrame, column: str) -> NDArray[np.float64]:
    if column not in turns:
        return np.zeros(0)
    return turns[column].dropna().to_numpy(dtype=np.float64)


def _row(a: Group, b: Group, metric: str, xa: NDArray[np.float64], xb: NDArray[np.float64],
         settings: Settings) -> dict[str, Any]:
    row: dict[str, Any] = {"a_run": a.run, "a": a.key, "b_run": b.run, "b": b.key, "metric": metric,
                           "n_a": len(xa), "n_b": len(xb)}
    if not len(xa) or not len(xb):
        return {**row, "verdict": "no data"}
    q = QUANTILES.get(metric)
    stat: Statistic = quantile(q) if q is not None else _mean
    point, lo, hi = bootstrap_diff(xa, xb, stat, settings.n_resamples, settings.seed,
                                   settings.confidence)
    a_value = float(stat(xa, axis=-1))
    row.update(a_value=a_value, b_value=a_value + point, diff=point, ci_lo=lo, ci_hi=hi,
               rel_diff=point / a_value if a_value else float("nan"))
    need = min_samples_for_quantile(q) if q is not None else 0
    if min(len(xa), len(xb)) < need:
        row["verdict"] = f"too few samples (need {need} per side)"
    elif not resolvable(lo, hi):
        row["verdict"] = "not resolvable"
    elif metric == "error_rate":
        row["verdict"] = "B more errors" if lo > 0 else "B fewer errors"
    else:
        row["verdict"] = "B slower" if lo > 0 else "B faster"
    return row


def compare_pair(a: Group, b: Group, settings: Settings = Settings()) -> list[dict[str, Any]]:
    """Rows for TTFA p50/p95/p99 (and the answer's, when measured) and error rate of ``b``
    against ``a``."""
    answers = bool(len(a.ttfa_answer_ms) or len(b.ttfa_answer_ms))
    rows = [_row(a, b, m, a.ttfa_answer_ms, b.ttfa_answer_ms, settings)
            if m.startswith("ttfa_answer") else _row(a, b, m, a.ttfa_ms, b.ttfa_ms, settings)
            for m in QUANTILES if answers or not m.startswith("ttfa_answer")]
    rows.append(_row(a, b, "error_rate", a.failed, b.failed, settings))
    return rows


def _frame(pairs: Iterable[tuple[Group, Group]], settings: Settings) -> pd.DataFrame:
    rows = [r for a, b in pairs for r in compare_pair(a, b, settings)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _pick(groups: Mapping[str, Group], name: str, where: str) -> Group:
    if name not in groups:
        raise ConfigError(f"{where} has no target {name!r} (has: {', '.join(groups)})")
    return groups[name]


def compare_within(run_dir: Path, by: str = "target", reference: str | None = None,
                   settings: Settings = Settings()) -> pd.DataFrame:
    """Targets of one run against a reference, or every pair (A = earlier in the manifest)."""
    groups = load_groups(run_dir, by)
    if len(groups) < 2:
        raise ConfigError(f"{run_dir} has a single {by} ({', '.join(groups)}); "
                          "give two runs to compare them")
    if reference is not None:
        ref = _pick(groups, reference, str(run_dir))
        return _frame(((ref, g) for k, g in groups.items() if k != reference), settings)
    return _frame(combinations(groups.values(), 2), settings)


def _turn_modes(run_dir: Path) -> list[str]:
    turns, _ = load_tables(run_dir)
    return sorted(set(turns["turn_mode"].dropna())) if len(turns) else []


def compare_runs(run_a: Path, run_b: Path, by: str = "target", reference: str | None = None,
                 settings: Settings = Settings()) -> pd.DataFrame:
    """Run B against run A, target by target (same names); single-target runs pair directly.

    With ``reference`` every group of B is compared with that group of A.
    """
    modes = [_turn_modes(run) for run in (run_a, run_b)]
    if modes[0] and modes[1] and modes[0] != modes[1]:
        raise ConfigError(f"{run_a} ({', '.join(modes[0])}) and {run_b} ({', '.join(modes[1])}) "
                          "use different turn modes: their TTFA anchors differ, so they are "
                          "not compared")
    ga, gb = load_groups(run_a, by), load_groups(run_b, by)
    if reference is not None:
        ref = _pick(ga, reference, str(run_a))
        return _frame(((ref, g) for g in gb.values()), settings)
    common = [k for k in ga if k in gb]
    if common:
        return _frame(((ga[k], gb[k]) for k in common), settings)
    if len(ga) == 1 and len(gb) == 1:
        return _frame([(next(iter(ga.values())), next(iter(gb.values())))], settings)
    raise ConfigError(f"{run_a} and {run_b} share no {by} ({', '.join(ga)} vs {', '.join(gb)}); "
                      "use --reference NAME or --by group")


def format_table(df: pd.DataFrame, confidence: float = 0.95) -> str:
    """The comparison as printed: values in ms (error rate in %), interval in brackets."""
    if df.empty:
        return "(nothing to compare)"
    view = pd.DataFrame({"A": df["a"], "B": df["b"], "metric": df["metric"],
                         "n A": df["n_a"], "n B": df["n_b"]})
    if df["a_run"].nunique() > 1 or (df["a_run"] != df["b_run"]).any():
        view["A"] = df["a_run"] + ":" + df["a"]
        view["B"] = df["b_run"] + ":" + df["b"]
    scale = np.where(df["metric"] == "error_rate", 100.0, 1.0)
    fmt = np.vectorize(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    view["A value"] = fmt(df["a_value"].astype(float) * scale)
    view["B value"] = fmt(df["b_value"].astype(float) * scale)
    view["B-A"] = fmt(df["diff"].astype(float) * scale)
    lo, hi = fmt(df["ci_lo"].astype(float) * scale), fmt(df["ci_hi"].astype(float) * scale)
    view[f"{confidence:.0%} CI"] = [f"[{a}, {b}]" if a != "-" else "-" for a, b in zip(lo, hi, strict=True)]
    view["verdict"] = df["verdict"]
    return str(view.to_string(index=False))
