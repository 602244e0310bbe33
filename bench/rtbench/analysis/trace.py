"""``trace.json``: a run as a timeline, one track per session, in the Chrome trace-event format
(opened by https://ui.perfetto.dev and chrome://tracing).

Built after the run from its tables alone, so nothing is added to the hot path and an old or
recovered run can be traced too: a session attempt's row gives its start, connect and
configure (``session.created``) times; each turn's row its start and latencies, which are
measured from the end of speech (T_eos, see protocol/turn.py). T_eos is placed at
``t_start_s + speech_end_ms``: the pacer sends in real time, so it is late by at most the turn's
``send_lateness_max_ms`` (kept in the event's args). Errors are instants on their session's
track.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..results.store import load_sessions, load_tables, table_rows

TRACE = "trace.json"
_PID = 1
_US = 1_000_000.0


def _num(v: Any) -> float | None:
    """A measured value, or None for null/NaN (not measured)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


def _span(name: str, tid: int, start_s: float, end_s: float, cat: str,
          args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "cat": cat, "ph": "X", "pid": _PID, "tid": tid,
            "ts": round(start_s * _US, 1), "dur": round(max(0.0, end_s - start_s) * _US, 1),
            "args": args or {}}


def _instant(name: str, tid: int, t_s: float, cat: str,
             args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "cat": cat, "ph": "i", "s": "t", "pid": _PID, "tid": tid,
            "ts": round(t_s * _US, 1), "args": args or {}}


def _session_events(tid: int, row: dict[str, Any], first_turn_s: float | None
                    ) -> Iterator[dict[str, Any]]:
    """Connect (start to WebSocket open), ``session.created``, then configure: from there to
    the first turn (``session.update`` sent, ``session.updated`` awaited)."""
    start = _num(row["start_s"])
    if start is None:  # dropped: it never started
        yield _instant("dropped", tid, float(row["intended_start_s"]), "session")
        return
    connect = _num(row["connect_ms"])
    created = _num(row["session_created_ms"])
    if connect is None:
        return
    yield _span("connect", tid, start, start + connect / 1000, "session",
                {"connect_ms": connect, "start_lag_ms": _num(row["start_lag_ms"])})
    ready = start + connect / 1000
    if created is not None:   # measured from the connect start, like connect_ms
        yield _instant("session.created", tid, start + created / 1000, "session",
                       {"session_created_ms": created})
        ready = max(ready, start + created / 1000)
    if first_turn_s is not None:
        yield _span("configure", tid, ready, first_turn_s, "session")


def _turn_events(tid: int, row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    t0 = float(row["t_start_s"])
    eos = t0 + float(row["speech_end_ms"]) / 1000
    name = f"turn {row['turn_idx']}"
    args = {k: _num(row[k]) if k.endswith("_ms") else row[k]
            for k in ("utterance", "status", "ttfa_ms", "vad_ms", "response_done_ms",
                      "send_lateness_max_ms", "response_id")}
    done = _num(row["response_done_ms"])
    yield _span(name, tid, t0, eos + done / 1000 if done is not None else eos, "turn", args)
    yield _span("speech", tid, t0, eos, "turn", {"utterance": row["utterance"]})
    marks = (("VAD (speech_stopped)", "vad_ms"), ("first audio byte", "ttfa_ms"),
             ("first transcript", "first_transcript_ms"), ("response end", "response_done_ms"))
    for label, col in marks:
        if (ms := _num(row[col])) is not None:
            yield _instant(label, tid, eos + ms / 1000, "turn", {col: ms})
    ttfa = _num(row["ttfa_ms"])
    if ttfa is not None and done is not None:
        yield _span("response audio", tid, eos + ttfa / 1000, eos + done / 1000, "turn")
    if row["status"] != "ok":
        yield _instant(f"turn {row['status']}", tid, eos, "error",
                       {"reason": row["status_reason"], "code": row["error_code"]})


def _thread(tid: int, label: str) -> list[dict[str, Any]]:
    return [{"name": "thread_name", "ph": "M", "pid": _PID, "tid": tid, "args": {"name": label}},
            {"name": "thread_sort_index", "ph": "M", "pid": _PID, "tid": tid,
             "args": {"sort_index": tid}}]


def build_trace(run_dir: Path) -> dict[str, Any]:
    """The trace document of a run directory: one ``tid`` per session attempt (0: the run)."""
    turns, errors = load_tables(run_dir)
    turn_rows, error_rows = table_rows(turns), table_rows(errors)
    session_rows = sorted(table_rows(load_sessions(run_dir)),
                          key=lambda r: (str(r["target"]), int(r["session_idx"]), int(r["attempt"])))
    first_turn: dict[tuple[str, int], float] = {}
    for row in turn_rows:
        session = (str(row["target"]), int(row["session_idx"]))
        first_turn[session] = min(first_turn.get(session, math.inf), float(row["t_start_s"]))
    events: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": _PID, "tid": 0,
                                     "args": {"name": f"rtbench run {run_dir.name}"}},
                                    *_thread(0, "run")]
    tids: dict[tuple[str, int, int], int] = {}
    latest: dict[tuple[str, int], int] = {}   # (target, session) -> tid of its last attempt
    for row in session_rows:
        key = (str(row["target"]), int(row["session_idx"]), int(row["attempt"]))
        tid = tids[key] = latest[key[:2]] = len(tids) + 1
        label = f"{key[0]} #{key[1]}" + (f" retry {key[2]}" if key[2] else "")
        events += _thread(tid, label + (f" {row['session_id']}" if row["session_id"] else ""))
        events += _session_events(tid, row, first_turn.get(key[:2]) if not row["retried"]
                                  else None)
    for row in turn_rows:   # retries happen before the first turn: turns are the last try's
        events += _turn_events(latest.get((str(row["target"]), int(row["session_idx"])), 0), row)
    for row in error_rows:
        attempt = (str(row["target"]), int(row["session_idx"]), int(row["attempt"]))
        tid = tids.get(attempt, latest.get(attempt[:2], 0))
        events.append(_instant(f"error {row['phase']}/{row['code'] or row['kind']}", tid,
                               float(row["t_s"]), "error",
                               {k: row[k] for k in ("kind", "code", "severity", "message",
                                                    "turn_idx")}))
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_trace(run_dir: Path) -> Path:
    path = run_dir / TRACE
    path.write_text(json.dumps(build_trace(run_dir)), encoding="utf-8")
    return path
