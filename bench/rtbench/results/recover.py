"""Rebuild a run that died without finishing (``kill -9``, power loss) from its journal.

The journal (turns, errors, sessions; one JSON line each, flushed as they happen) is the
source of truth. A run with worker processes has one journal per shard (``workers/w<i>/``),
which the parent merges only at the end: when the parent died first, the shards' journals are
the run's, so recovery rebuilds the run's journal from them (they hold every row the parent's
could hold, merged or not); the tables, histograms and summary are derived from it. Turn and session
latencies are re-recorded from the rows exactly (the rows hold the same values the histograms
were fed); what only lived in memory (chunk send lateness, loop lag) is lost and the manifest
says so.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson

from ..metrics.recorder import SESSION_LATENCIES, Recorder, turn_metrics
from .store import (
    ERRORS_JOURNAL,
    HISTOGRAMS,
    MANIFEST,
    SESSIONS_JOURNAL,
    SHARDS_DIR,
    SUMMARY_CSV,
    TURNS_JOURNAL,
    load_manifest,
    load_sessions,
    load_tables,
    write_tables,
)
from .summary import summarize

#: Figures recorded only in memory during the run; a recovered run does not have them.
LOST_ON_CRASH = ("send_lateness_ms", "loop_lag_ms", "bunched_chunks")


def needs_recovery(run_dir: Path) -> bool:
    """True for a run whose process died: its manifest still says ``running``."""
    return load_manifest(run_dir).get("status") == "running"


def _whole_lines(journal: bytes) -> bytes:
    """The journal up to its last complete line (a crash may have cut the last one)."""
    end = journal.rfind(b"\n")
    return journal[: end + 1]


def _rejoin_shards(run_dir: Path) -> int:
    """Rewrite the run's journals as the concatenation of its shards' (if it had workers)."""
    root = run_dir / SHARDS_DIR
    shards = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: (len(d.name), d.name)
                    ) if root.is_dir() else []
    if not shards:
        return 0
    for name in (TURNS_JOURNAL, ERRORS_JOURNAL, SESSIONS_JOURNAL):
        with open(run_dir / name, "wb") as out:
            for shard in shards:
                if (shard / name).exists():
                    out.write(_whole_lines((shard / name).read_bytes()))
    return len(shards)


def recover(run_dir: Path) -> dict[str, Any]:
    """Write tables, histograms and summary from the journal; mark the run ``recovered``."""
    manifest = load_manifest(run_dir)
    shards = _rejoin_shards(run_dir)
    turns, errors = load_tables(run_dir)
    sessions = load_sessions(run_dir)
    recorder = Recorder()
    ok = turns[turns["status"] == "ok"]
    for rec in ok.to_dict("records"):
        for metric in turn_metrics(barge_in=bool(rec.get("barge_in")),
                                   premature=bool(rec.get("premature"))):
            value = rec.get(metric)
            if value is not None and value == value:  # skip None and NaN
                recorder.record_ms(str(rec["target"]), metric, float(value))
    for rec in sessions[sessions["status"] != "dropped"].to_dict("records"):
        for metric in SESSION_LATENCIES:
            value = rec.get(metric)
            if value is not None and value == value:
                recorder.record_ms(str(rec["target"]), metric, float(value))
    write_tables(run_dir, turns, errors, sessions)
    (run_dir / HISTOGRAMS).write_bytes(orjson.dumps(recorder.encoded()))
    per_turn = int(manifest.get("scenario", {}).get("turns_per_session", 1))
    summary = summarize(turns, errors, recorder, manifest.get("targets", []), per_turn, sessions)
    summary.to_csv(run_dir / SUMMARY_CSV, index=False)
    manifest.update(status="recovered", recovered_at=dt.datetime.now(dt.UTC).isoformat(),
                    recovered={"turns": len(turns), "errors": len(errors),
                               "sessions": len(sessions), "lost": list(LOST_ON_CRASH),
                               "from_shards": shards})
    (run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return dict(manifest["recovered"])
