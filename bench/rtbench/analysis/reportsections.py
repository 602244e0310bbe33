"""The report's text sections, read from a run's manifest and tables: how the run was
configured, how it ended (said plainly when it did not end well), whether the generator kept up,
and the errors themselves.

A report is read later by someone who did not start the run: a run that was stopped, aborted,
rebuilt after a crash, or where no turn completed must say so at the top, in red, with the
reason, never look like a clean "complete" with empty plots.
"""

from __future__ import annotations

import html
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..results.store import table_rows
from ..results.summary import any_effort

#: Rows of the errors table; the rest are counted, and are all in errors.parquet.
MAX_ERROR_ROWS = 50
ERROR_COLUMNS = ("t_s", "target", "phase", "kind", "code", "severity", "session_idx",
                 "session_id", "message")
TARGET_COLUMNS = ("name", "url", "dialect", "region", "model", "effort", "provider", "sessions",
                  "tls")


def fmt(v: Any, col: str) -> str:
    """One table cell: rates as percent, floats to 0.1, missing as an en dash."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v * 100:.2f}%" if col.endswith("_rate") else f"{v:.1f}"
    return html.escape(str(v))


def table(rows: Iterable[Mapping[Any, Any]], columns: Sequence[str], cls: str = "") -> str:
    """A table in a box of the page's width: cells wrap, and what still does not fit scrolls
    inside the box (the page itself never scrolls sideways)."""
    # A header may break after each underscore (ttfa_ms_<wbr>p99), never inside a word.
    head = "".join(f"<th>{html.escape(c).replace('_', '_<wbr>')}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c), c)}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return (f'<div class="wide"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


@dataclass(frozen=True, slots=True)
class Status:
    """How the run ended: ``ok`` False puts it in red, with ``reasons``."""

    label: str
    ok: bool
    reasons: tuple[str, ...]


def run_status(manifest: Mapping[str, Any], turns: pd.DataFrame, sessions: pd.DataFrame) -> Status:
    """The run's status as the manifest records it, made honest: a run with no completed turn
    is ``failed`` whatever its manifest says, and every way a run can end short is named."""
    label = str(manifest.get("status", "unknown"))
    reasons: list[str] = []
    if label == "running":
        reasons.append("the run never finished (crashed or killed); `rtbench report` on its "
                       "directory rebuilds the tables from the journal")
    if manifest.get("stopped_by"):
        reasons.append(f"stopped by {manifest['stopped_by']} before the load model ended")
    if manifest.get("write_failure"):
        reasons.append(f"{manifest['write_failure']} ({manifest.get('rows_lost', 0)} rows lost)")
    if aborted := manifest.get("aborted"):
        reasons.append(f"aborted at {float(aborted.get('t_s', 0)):.1f} s: "
                       + "; ".join(map(str, aborted.get("messages", []))))
    if label == "recovered":
        lost = ", ".join(manifest.get("recovered", {}).get("lost", []))
        reasons.append(f"rebuilt from the journal at {manifest.get('recovered_at', '?')} after "
                       f"the run did not finish; not recorded: {lost or 'nothing'}")
    ok_turns = int((turns["status"] == "ok").sum()) if len(turns) else 0
    if ok_turns == 0:
        attempts = sessions[sessions["status"] != "dropped"] if len(sessions) else sessions
        failed = int((attempts["status"] == "failed").sum()) if len(attempts) else 0
        reasons.append(f"no turn completed: {failed} of {len(attempts)} session attempts "
                       f"failed, {len(turns)} turns started")
        label = "failed"
    ok = label == "complete" and not reasons
    return Status(label, ok, tuple(reasons))


def status_section(status: Status, manifest: Mapping[str, Any]) -> str:
    cls = "status ok" if status.ok else "status bad"
    lines = "".join(f"<li>{html.escape(r)}</li>" for r in status.reasons)
    return (f'<div class="{cls}"><p>status <b id="run-status">{html.escape(status.label)}</b>, '
            f"{manifest.get('sessions', '?')} sessions, started "
            f"{html.escape(str(manifest.get('started_at', '?')))}, finished "
            f"{html.escape(str(manifest.get('finished_at', '?')))}</p>"
            + (f"<ul>{lines}</ul>" if lines else "") + "</div>")


def saturation_section(manifest: Mapping[str, Any]) -> str:
    """The generator's own verdict (manifest ``generator``): were its latencies trustworthy?"""
    gen = manifest.get("generator")
    if not gen:
        return '<p class="saturation">No generator verdict recorded for this run.</p>'
    figures = (f"event-loop lag p99 {gen['loop_lag_p99_ms']:.1f} ms (max "
               f"{gen['loop_lag_max_ms']:.1f}), send lateness p99 "
               f"{gen['send_lateness_p99_ms']:.1f} ms, {gen['bunched_chunks']} chunks bunched, "
               f"threshold {gen['threshold_ms']:g} ms")
    if gen["saturated"]:
        return (f'<p class="saturation bad"><b>Load generator saturated</b>: {figures}. '
                f"Inflated by up to that lag: {html.escape(', '.join(gen['affected']))}; use "
                "fewer sessions per process or more workers.</p>")
    return f'<p class="saturation ok">Load generator kept up: {figures}.</p>'


def config_section(manifest: Mapping[str, Any]) -> str:
    """Command, targets, load model and (embedded) simulator timing, from the manifest."""
    parts = [f"<p>command: <code>rtbench {html.escape(shlex.join(manifest.get('command', [])))}"
             "</code></p>"]
    targets = list(manifest.get("targets", []))
    if targets:
        shown = [c for c in TARGET_COLUMNS if any(c in t for t in targets)
                 and (c != "effort" or any_effort(t.get(c) for t in targets))]
        parts.append(table(targets, shown, "targets"))
    if model := manifest.get("load_model"):
        given = {k: v for k, v in model.items() if v is not None}
        parts.append("<p>load model: " + ", ".join(
            f"{html.escape(str(k))} <b>{fmt(v, str(k))}</b>" for k, v in given.items()) + "</p>")
    scenario = manifest.get("scenario") or {}
    if scenario:
        keys = ("turns_per_session", "chunk_ms", "utterances", "think_time_ms")
        parts.append("<p>scenario: " + ", ".join(
            f"{k} <b>{html.escape(str(scenario[k]))}</b>" for k in keys if k in scenario) + "</p>")
    sim = manifest.get("simulator") or {}
    if sim.get("embedded"):
        latency = sim.get("latency") or {}
        text = ", ".join(f"{html.escape(k)} <b>{html.escape(str(v))}</b>"
                         for k, v in latency.items()) or "not recorded"
        args = shlex.join(sim.get("args", []))
        parts.append(f"<p>embedded simulator{' (wss://)' if sim.get('tls') else ''}: {text}"
                     + (f"; flags <code>{html.escape(args)}</code>" if args else "") + "</p>")
    return "\n".join(parts)


def errors_table(errors: pd.DataFrame) -> str:
    """The first errors in time, with their messages and session ids (bounded)."""
    if errors.empty:
        return ""
    rows = table_rows(errors.sort_values("t_s", kind="stable").head(MAX_ERROR_ROWS))
    more = len(errors) - len(rows)
    note = (f"<p>{more} more errors are in <code>errors.parquet</code>.</p>" if more > 0 else "")
    return table(rows, ERROR_COLUMNS, "errors") + note
