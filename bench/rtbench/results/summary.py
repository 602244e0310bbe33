"""Per region × model (× reasoning effort) summary: counts, error rates and percentiles from
the HDR histograms.

Percentiles come from histograms (exact to 3 significant digits, mergeable), never from
pandas quantiles over raw samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..metrics.recorder import ALL_METRICS, Recorder, new_histogram, percentiles_ms


def summarize(
    turns: pd.DataFrame,
    errors: pd.DataFrame,
    recorder: Recorder,
    targets: Iterable[Mapping[str, Any]],
    turns_per_session: int,
    sessions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (region, model, effort) with sessions, turns, error rates and p50..max per
    metric. ``effort`` is the reasoning effort the targets' sessions asked for ("" when none
    did): targets that differ only in it are not pooled (protocol reference §10.2: effort is a
    dimension to compare).

    ``error_rate`` = (failed turns + turns lost by sessions that failed before their first turn)
    over (turns + those lost turns): a session refused at connect counts as all its turns
    failed. Retried attempts are counted in ``retries`` and do not count twice; dropped arrivals
    (open model at its concurrency cap) are reported apart, and so are the turns a session never
    played because the run stopped first (``turns_not_run``: not errors). Without a sessions
    table, the manifest's planned session counts are used.
    """
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for t in targets:
        label = (str(t["region"]), str(t["model"]), str(t.get("effort") or ""))
        groups.setdefault(label, []).append(t)
    rows = []
    for (region, model, effort), members in sorted(groups.items()):
        names = {str(m["name"]) for m in members}
        gt = turns[turns["target"].isin(names)]
        ge = errors[errors["target"].isin(names)]
        real = ge[ge["severity"] != "benign"] if "severity" in ge else ge
        ok = int((gt["status"] == "ok").sum())
        if sessions is not None and len(sessions):
            gs = sessions[sessions["target"].isin(names)]
            attempts = gs[gs["status"] != "dropped"]
            final = attempts[~attempts["retried"].astype(bool)]
            n_sessions = len(final)
            lost = final[(final["status"] == "failed")
                         & (final["turns_ok"] + final["turns_failed"] == 0)]
            lost_turns = len(lost) * turns_per_session
            stopped = final[final["status"] == "stopped"]
            not_run = int((turns_per_session - stopped["turns_ok"] - stopped["turns_failed"])
                          .clip(lower=0).sum())
            retries = int((attempts["attempt"] > 0).sum())
            dropped = int((gs["status"] == "dropped").sum())
            start_lag_p99 = float(attempts["start_lag_ms"].quantile(0.99)) if len(
                attempts) else float("nan")
        else:
            n_sessions = sum(int(m["sessions"]) for m in members)
            lost_turns = n_sessions * turns_per_session - len(gt)
            retries = dropped = not_run = 0
            start_lag_p99 = float("nan")
        failed_sessions = real["session_idx"].nunique() if len(real) else 0
        denominator = len(gt) + lost_turns
        row: dict[str, Any] = {
            "region": region,
            "model": model,
            "effort": effort,
            "targets": ",".join(sorted(names)),
            # one scenario per run, so one mode; shown so runs of different modes are not pooled
            "turn_mode": ",".join(sorted(set(gt["turn_mode"].dropna()))) if len(gt) else "",
            "sessions": n_sessions,
            "sessions_with_errors": int(failed_sessions),
            "retries": retries,
            "dropped": dropped,
            "turns": len(gt),
            "turns_ok": ok,
            "turns_not_run": not_run,
            "errors": len(real),
            "error_rate": (1.0 - ok / denominator) if denominator else float("nan"),
            "session_error_rate": failed_sessions / n_sessions if n_sessions else float("nan"),
            "start_lag_ms_p99": start_lag_p99,
            # answered before the user finished: flagged, kept out of the latency percentiles
            "premature": int(gt["premature"].sum()) if "premature" in gt else 0,
            "premature_rate": float(gt["premature"].mean()) if len(gt) and "premature" in gt
            else float("nan"),
            # completed with nothing audible although the session asked for audio (§10.3)
            "no_audio": int((ge["kind"] == "no_audio").sum()) if "kind" in ge else 0,
        }
        out_of_range = 0
        for metric in ALL_METRICS:
            hist = new_histogram()
            for name in sorted(names):
                series = recorder.series(name, metric)
                hist.add(series.histogram)
                out_of_range += series.out_of_range
            row[f"{metric}_count"] = hist.get_total_count()
            for key, value in percentiles_ms(hist).items():
                row[f"{metric}_{key}"] = value
        row["out_of_range"] = out_of_range
        rows.append(row)
    return pd.DataFrame(rows)


def any_effort(values: Iterable[object]) -> bool:
    """Did any target's sessions ask for a reasoning effort? Tables show the ``effort`` column
    only then (a run that sets none would carry an empty one)."""
    return any(isinstance(v, str) and v for v in values)


#: The end-of-run table: summary column -> header; then each latency as "p50/p95" in whole ms
#: (from the histograms, premature turns left out); ``premature`` and ``no_audio`` count turns.
TABLE_COLUMNS = {"region": "region", "model": "model", "effort": "effort", "sessions": "sess",
                 "turns_ok": "ok", "error_rate": "err %"}
TABLE_LATENCIES = {"ttfb_ms": "TTFB p50/95", "ttfa_ms": "TTFA p50/95",
                   "ttfa_answer_ms": "answer p50/95"}
TABLE_COUNTS = ("premature", "no_audio")


def _p50_p95(summary: pd.DataFrame, metric: str) -> list[str]:
    """``"p50/p95"`` of ``metric`` per row, in whole ms (``-`` where not measured)."""
    missing = pd.Series(float("nan"), index=summary.index)
    p50, p95 = (summary.get(f"{metric}_{q}", missing) for q in ("p50", "p95"))
    return [("-" if pd.isna(a) else f"{a:.0f}") + "/" + ("-" if pd.isna(b) else f"{b:.0f}")
            for a, b in zip(p50, p95, strict=True)]


def format_table(summary: pd.DataFrame) -> str:
    """The short table printed at the end of a run: first byte, first audible sample and the
    answer's first audible sample (p50/p95), and the turns answered too early (``premature``)
    or with nothing audible (``no_audio``). ``effort`` only when a target set one; under 100
    columns for the simulator's labels."""
    view = summary.reindex(columns=list(TABLE_COLUMNS)).copy()
    if not any_effort(view["effort"]):
        view = view.drop(columns="effort")
    view["error_rate"] = (view["error_rate"] * 100).round(2)
    view.columns = [TABLE_COLUMNS[c] for c in view.columns]
    for metric, header in TABLE_LATENCIES.items():
        view[header] = _p50_p95(summary, metric)
    for count in TABLE_COUNTS:
        view[count] = summary.get(count, pd.Series(0, index=summary.index)).fillna(0).astype(int)
    return str(view.to_string(index=False, float_format=lambda v: f"{v:.1f}", na_rep="-"))
