"""Metric samples from the run's journal rows, for the live ``--out`` destinations.

The journal (turns, sessions, errors: append-only JSON lines, one write per row; see
results/store.py) is the only input, read by :class:`JournalTail` from its files: the sessions
never wait for an output, and an output sees exactly the rows the run keeps.

Each row becomes samples in k6's model (https://grafana.com/docs/k6/latest/results-output/):
a *trend* per latency (``ttfa_ms``...), a *counter* per row kind (``turns``, ``sessions``,
``errors``), tagged with target, region, model and the row's own labels. A sample's time is
when its row's subject began (a turn's start, a session attempt's start, an error's moment),
run start (``started_at``) plus the row's offset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..results.store import ERRORS_JOURNAL, SESSIONS_JOURNAL, TURNS_JOURNAL

#: Latency columns sent as trends, per journal.
TURN_TRENDS = ("ttfa_ms", "vad_ms", "first_transcript_ms", "response_done_ms",
               "send_lateness_max_ms", "interrupt_ms", "audio_stop_ms")
SESSION_TRENDS = ("connect_ms", "session_created_ms", "start_lag_ms")
#: metric -> (k6 type, k6 "contains"): every metric a run can send, declared once.
METRICS: dict[str, tuple[str, str]] = {
    **{m: ("trend", "time") for m in (*TURN_TRENDS, *SESSION_TRENDS)},
    "turns": ("counter", "default"), "sessions": ("counter", "default"),
    "errors": ("counter", "default"),
}
_LABELS = ("target", "region", "model")


@dataclass(frozen=True, slots=True)
class Sample:
    metric: str
    value: float
    time: dt.datetime
    tags: Mapping[str, str]


def _tags(row: Mapping[str, Any], *extra: str) -> dict[str, str]:
    return {k: str(row[k]) for k in (*_LABELS, *extra) if row.get(k) is not None}


def turn_samples(row: Mapping[str, Any], t0: dt.datetime) -> Iterator[Sample]:
    at = t0 + dt.timedelta(seconds=float(row["t_start_s"]))
    tags = _tags(row, "session_id", "turn_idx", "status", "turn_mode")
    yield Sample("turns", 1.0, at, tags)
    if row["status"] != "ok":
        return            # a failed turn's figures are censored, never latencies
    for metric in TURN_TRENDS:
        if (value := row.get(metric)) is not None:
            yield Sample(metric, float(value), at, tags)


def session_samples(row: Mapping[str, Any], t0: dt.datetime) -> Iterator[Sample]:
    start = row["start_s"] if row["start_s"] is not None else row["intended_start_s"]
    at = t0 + dt.timedelta(seconds=float(start))
    tags = _tags(row, "session_id", "attempt", "status", "end_code")
    yield Sample("sessions", 1.0, at, tags)
    for metric in SESSION_TRENDS:
        if (value := row.get(metric)) is not None:
            yield Sample(metric, float(value), at, tags)


def error_samples(row: Mapping[str, Any], t0: dt.datetime) -> Iterator[Sample]:
    yield Sample("errors", 1.0, t0 + dt.timedelta(seconds=float(row["t_s"])),
                 _tags(row, "session_id", "phase", "kind", "code", "severity"))


_JOURNALS = ((TURNS_JOURNAL, turn_samples), (SESSIONS_JOURNAL, session_samples),
             (ERRORS_JOURNAL, error_samples))


class JournalTail:
    """Reads the rows appended to a run's journals since the last call (whole lines only)."""

    def __init__(self, run_dir: Path, started_at: str) -> None:
        self.t0 = dt.datetime.fromisoformat(started_at)
        self._files = [(run_dir / name, convert) for name, convert in _JOURNALS]
        self._offsets = [0] * len(self._files)

    def read(self) -> list[Sample]:
        """New samples, in journal order per file. Blocking file I/O: call it in a thread."""
        out: list[Sample] = []
        for i, (path, convert) in enumerate(self._files):
            try:
                with open(path, "rb") as fh:
                    fh.seek(self._offsets[i])
                    data = fh.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1      # a line being written is left for the next call
            self._offsets[i] += end
            for line in data[:end].splitlines():
                out.extend(convert(orjson.loads(line), self.t0))
        return out

