"""``--trace``: the run as a Chrome trace-event timeline (Perfetto), one track per session."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rtbench.analysis.trace import TRACE, build_trace
from test_report import failed_run

if TYPE_CHECKING:
    from gatehelp import RunSim

pytest_plugins = ["gatehelp"]   # fixture: run_sim


def well_formed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The events, each checked: phase, integer ids, ts in µs (≥ 0), dur ≥ 0 for spans."""
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    for ev in events:
        assert ev["ph"] in ("X", "i", "M") and isinstance(ev["name"], str), ev
        assert isinstance(ev["pid"], int) and isinstance(ev["tid"], int), ev
        if ev["ph"] != "M":
            assert ev["ts"] >= 0, ev
        if ev["ph"] == "X":
            assert ev["dur"] >= 0, ev
        if ev["ph"] == "i":
            assert ev["s"] == "t", ev
    return list(events)


def test_run_with_trace_writes_one_track_per_session(run_sim: RunSim, tmp_path: Path) -> None:
    code, out, run = run_sim(tmp_path, "traced", 300, "--trace", "--no-report")
    assert code == 0, out
    assert f"trace: {run / TRACE}" in out
    events = well_formed(json.loads((run / TRACE).read_text()))
    names = {ev["tid"]: ev["args"]["name"] for ev in events if ev["name"] == "thread_name"}
    sessions = pd.read_parquet(run / "sessions.parquet")
    assert sorted(names) == list(range(len(sessions) + 1)) and len(sessions) == 4
    for sid in sessions["session_id"]:
        assert sum(sid in label for label in names.values()) == 1
    per_track = Counter((ev["tid"], ev["name"]) for ev in events if ev["ph"] != "M")
    turns = pd.read_parquet(run / "turns.parquet")
    for tid in range(1, 5):
        assert per_track[(tid, "connect")] == 1 and per_track[(tid, "configure")] == 1
        assert per_track[(tid, "speech")] == per_track[(tid, "first audio byte")] == 2
        assert per_track[(tid, "response end")] == per_track[(tid, "VAD (speech_stopped)")] == 2
    # Positions are the tables' figures in µs: first audio = T_eos + TTFA.
    turn = turns.iloc[0]
    track = next(t for t, label in names.items()
                 if label.endswith(str(turn["session_id"])))
    eos_us = (turn["t_start_s"] + turn["speech_end_ms"] / 1000) * 1e6
    first = [ev for ev in events if ev["tid"] == track and ev["name"] == "first audio byte"
             and ev["args"]["ttfa_ms"] == turn["ttfa_ms"]]
    assert len(first) == 1 and abs(first[0]["ts"] - (eos_us + turn["ttfa_ms"] * 1000)) < 1


def test_errors_are_instants_on_their_sessions_tracks(tmp_path: Path) -> None:
    run = failed_run(tmp_path, sessions=5)
    events = well_formed(build_trace(run))
    errors = [ev for ev in events if ev["name"] == "error connect/401"]
    assert len(errors) == 5 and len({ev["tid"] for ev in errors}) == 5
    assert 0 not in {ev["tid"] for ev in errors}
    assert errors[0]["args"]["message"].startswith("invalid api key")
    # No turn ran: no configure span is invented.
    assert not [ev for ev in events if ev["name"] in ("configure", "speech")]
