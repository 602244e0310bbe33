"""Per region × model summary: counts, error rates and percentiles from the HDR histograms.

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
    """One row per (region, model) with sessions, turns, error rates and p50..max per metric.

    ``error_rate`` = (failed turns + turns lost by sessions that failed before their first turn)
    over (turns + those lost turns): a session refused at connect counts as all its turns
    failed. Retried attempts are counted in ``retries`` and do not count twice; dropped arrivals
    (open model at its concurrency cap) are reported apart, and so are the turns a session never
    played because the run stopped first (``turns_not_run``: not errors). Without a sessions
    table, the manifest's planned session counts are used.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for t in targets:
        groups.setdefault((str(t["region"]), str(t["model"])), []).append(t)
    rows = []
    for (region, model), members in sorted(groups.items()):
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


def format_table(summary: pd.DataFrame) -> str:
    """The short table printed at the end of a run."""
    cols = {
        "region": "region",
        "model": "model",
        "sessions": "sessions",
        "turns_ok": "turns ok",
        "error_rate": "err %",
        "ttfa_ms_p50": "TTFA p50",
        "ttfa_ms_p95": "p95",
        "ttfa_ms_p99": "p99",
        "ttfa_ms_max": "max",
        "vad_ms_p50": "VAD p50",
        "send_lateness_ms_p99": "late p99",
    }
    view = summary[list(cols)].rename(columns=cols).copy()
    view["err %"] = (view["err %"] * 100).round(2)
    return str(view.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
