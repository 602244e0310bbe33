"""``report.html``: one self-contained page (plots embedded as base64 PNG) for a saved run.

Read from the run directory only, so a report can be made again later or on another machine:
HDR percentile curves per target (tail axis ``1/(1-p)``, as HdrHistogram's plotter draws them),
TTFA over the run, errors by phase and code (and the first of them, verbatim), the region ×
model table and the gate verdicts; above them how the run was configured and how it ended
(see reportsections.py).
No external resource is referenced: CI artefact viewers often block them.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display in CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

from ..metrics.recorder import ALL_METRICS, GENERATOR, Recorder
from ..results.store import (
    SUMMARY_CSV,
    load_manifest,
    load_recorder,
    load_sessions,
    load_tables,
)
from ..results.summary import any_effort, summarize
from .gate import turns_per_session
from .reportsections import (
    config_section,
    errors_table,
    run_status,
    saturation_section,
    status_section,
    table,
)

REPORT = "report.html"
CURVE_METRICS = ("ttfa_ms", "ttfb_ms", "ttfa_answer_ms", "silence_pad_ms", "response_done_ms",
                 "vad_ms", "first_transcript_ms", "connect_ms",
                 "session_created_ms")
#: The summary table (it fits a 1280 px window; every column is in summary.csv): premature and
#: no_audio turn counts, then TTFA and what it is made of.
TABLE_COLUMNS = ("region", "model", "effort", "sessions", "turns_ok", "error_rate",
                 "session_error_rate", "premature", "no_audio",
                 "ttfa_ms_p50", "ttfa_ms_p95", "ttfa_ms_p99", "ttfa_ms_max",
                 "ttfb_ms_p50", "silence_pad_ms_p50", "ttfa_answer_ms_p95",
                 "vad_ms_p50", "connect_ms_p95", "send_lateness_ms_p99")


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def percentile_curve(recorder: Recorder, target: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(x = 1/(1-p), value ms) from the HDR histogram, up to the recorded maximum."""
    hist = recorder.series(target, metric).histogram
    n = hist.get_total_count()
    if n == 0:
        return np.empty(0), np.empty(0)
    top = min(6.0, math.log10(n) + 1.0)                 # no tail finer than the sample allows
    ks = np.linspace(0.0, top, 120)
    pcts = [float(100.0 * (1.0 - 10.0 ** -k)) for k in ks]
    values = hist.get_percentile_to_value_dict(pcts)
    x = 1.0 / (1.0 - np.array(pcts) / 100.0)
    y = np.array([values[p] / 1000.0 for p in pcts])
    return x, y


def plot_percentiles(recorder: Recorder, targets: Sequence[str], metric: str) -> str | None:
    curves = [(t, *percentile_curve(recorder, t, metric)) for t in targets]
    curves = [c for c in curves if len(c[1])]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for target, x, y in curves:
        ax.plot(x, y, label=target, linewidth=1.6)
    ax.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000, 10_000, 100_000, 1_000_000]
    labels = ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    xmax = max(float(x.max()) for _, x, _ in curves)
    keep = [i for i, t in enumerate(ticks) if t <= xmax * 1.01]
    ax.xaxis.set_major_locator(FixedLocator([ticks[i] for i in keep]))
    ax.set_xticklabels([labels[i] for i in keep])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1, max(10.0, xmax))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("percentile")
    ax.set_ylabel(f"{metric} (ms)")
    ax.set_title(f"{metric}: latency by percentile (HDR)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def plot_ttfa_over_time(turns: pd.DataFrame) -> str | None:
    ok = turns[(turns["status"] == "ok") & turns["ttfa_ms"].notna()]
    if ok.empty:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for target, rows in ok.groupby("target"):
        ax.scatter(rows["t_start_s"], rows["ttfa_ms"], s=10, alpha=0.7, label=str(target))
    bad = turns[turns["status"] != "ok"]
    if not bad.empty:
        ax.scatter(bad["t_start_s"], np.full(len(bad), float(ok["ttfa_ms"].max())), marker="x",
                   color="crimson", s=20, label="failed turn")
    ax.set_xlabel("turn start (s since run start)")
    ax.set_ylabel("TTFA (ms)")
    ax.set_title("TTFA over the run")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def errors_figure(errors: pd.DataFrame) -> Figure | None:
    """Errors counted by phase / code, one bar each (None when there is none)."""
    if errors.empty:
        return None
    labels = errors["phase"].astype(str) + " / " + errors["code"].fillna(errors["kind"]).astype(str)
    counts = labels.value_counts().sort_values()
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.35 * len(counts)))
    ax.barh(list(counts.index), list(counts.values), color="indianred")
    ax.set_xlabel("errors")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # counts: no 0.25-error ticks
    ax.set_title("errors by phase / code")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def plot_errors(errors: pd.DataFrame) -> str | None:
    fig = errors_figure(errors)
    return None if fig is None else _png(fig)


def _gate_section(run_dir: Path) -> str:
    path = run_dir / "summary.json"
    if not path.exists():
        return "<p>No verdict recorded (run <code>rtbench gate</code>).</p>"
    doc = json.loads(path.read_text())
    checks = doc.get("checks", [])
    if not checks:
        return "<p>No budgets were set for this run.</p>"
    rows = "".join(
        f'<tr class="{"pass" if c["passed"] else "fail"}"><td>{"PASS" if c["passed"] else "FAIL"}</td>'
        f"<td>{html.escape(c['name'])}</td><td>{html.escape(c['message'])}</td></tr>"
        for c in checks)
    verdict = html.escape(str(doc.get("verdict", "?"))).upper()
    return (f"<p class=\"verdict {verdict.lower()}\">Gate: {verdict}</p>"
            f"<table><thead><tr><th></th><th>check</th><th>detail</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
section,h1,h2,p,ul{max-width:1100px}
.wide{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
table.summary{font-size:12px}table.summary th{min-width:3.5em}
th{background:#f3f3f3}td:nth-child(-n+2){text-align:left}
table.errors td,table.targets td{text-align:left;overflow-wrap:anywhere}
table.errors td:last-child{min-width:20em}
tr.fail td{background:#fde8e8}tr.pass td{background:#eaf7ea}
.verdict{font-size:1.3em;font-weight:bold}.verdict.fail{color:#b00}.verdict.pass{color:#070}
.status.bad,.saturation.bad{color:#b00;border-left:4px solid #b00;padding-left:0.6em}
.status.bad b{font-size:1.2em}
img{max-width:min(100%,1100px);display:block;margin:0.5em 0}code{background:#f3f3f3}
"""


def render(run_dir: Path) -> str:
    """The report's HTML for a run directory."""
    manifest = load_manifest(run_dir)
    turns, errors = load_tables(run_dir)
    sessions = load_sessions(run_dir)
    recorder = load_recorder(run_dir)
    targets = sorted({t for (t, _m), _s in recorder.items() if t != GENERATOR}
                     | {str(t["name"]) for t in manifest.get("targets", [])})
    status = run_status(manifest, turns, sessions)
    parts = [f"<h1>rtbench run {html.escape(str(manifest.get('run_id', run_dir.name)))}</h1>",
             status_section(status, manifest), saturation_section(manifest),
             "<h2>Run configuration</h2>", config_section(manifest),
             "<h2>Gate</h2>", _gate_section(run_dir), "<h2>By region × model (× effort)</h2>"]
    csv = run_dir / SUMMARY_CSV
    summary = pd.read_csv(csv) if csv.exists() else summarize(
        turns, errors, recorder, manifest.get("targets", []), turns_per_session(manifest),
        sessions)
    if len(summary):
        cols = [c for c in TABLE_COLUMNS if c in summary.columns
                and (c != "effort" or any_effort(summary[c]))]
        parts.append(table(summary.to_dict("records"), cols, "summary"))
    parts.append("<h2>Latency distributions</h2>")
    curves = [(m, plot_percentiles(recorder, targets, m)) for m in CURVE_METRICS]
    for metric, img in curves:
        if img is not None:
            parts.append(f'<img alt="{metric} percentile distribution" src="{img}">')
    if all(img is None for _m, img in curves):
        parts.append('<p class="status bad">No latency was measured: no session got as far as '
                     "a measured step (see Errors).</p>")
    parts.append("<h2>TTFA over time</h2>")
    img = plot_ttfa_over_time(turns)
    parts.append(f'<img alt="TTFA over time" src="{img}">' if img else "<p>No completed turn.</p>")
    parts.append(f"<h2>Errors ({len(errors)})</h2>")
    img = plot_errors(errors)
    parts.append(f'<img alt="errors by phase and code" src="{img}">' if img else "<p>No errors.</p>")
    parts.append(errors_table(errors))
    lag = recorder.series(GENERATOR, "loop_lag_ms").histogram
    if lag.get_total_count():
        parts.append(f"<p>Generator event-loop lag: p99 {lag.get_value_at_percentile(99) / 1000:.1f}"
                     f" ms, max {lag.get_max_value() / 1000:.1f} ms.</p>")
    unknown = [m for m in ALL_METRICS if m not in CURVE_METRICS]
    parts.append(f"<p>Histograms of {', '.join(unknown)} and every metric per interval are in "
                 "<code>histograms.json</code> and <code>intervals.hlog</code>.</p>")
    title = html.escape(f"rtbench {manifest.get('run_id', run_dir.name)}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><link rel=\"icon\" href=\"data:,\"><style>{CSS}</style>"
            "</head><body>" + "\n".join(parts) + "</body></html>\n")


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    path = out or run_dir / REPORT
    path.write_text(render(run_dir), encoding="utf-8")
    return path
