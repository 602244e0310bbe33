"""The run directory: ``results/<run-id>/``.

Turns and errors are journaled as they happen (append-only JSON lines, flushed per row) so a
crash loses nothing already measured; ``finalize`` turns the journal into Parquet tables,
stores the encoded histograms and writes ``summary.csv``. The manifest is written first (status
``running``) and rewritten at the end (``complete`` or ``partial``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd

from ..metrics.recorder import Recorder
from ..metrics.records import ErrorRecord, SessionRecord, TurnRecord
from .schema import ERRORS, SESSIONS, TURNS, TableSchema, bad_field_note

MANIFEST = "manifest.json"
TURNS_JOURNAL = "turns.jsonl"
ERRORS_JOURNAL = "errors.jsonl"
SESSIONS_JOURNAL = "sessions.jsonl"
SESSIONS_TABLE = "sessions.parquet"
TURNS_TABLE = "turns.parquet"
ERRORS_TABLE = "errors.parquet"
HISTOGRAMS = "histograms.json"
SUMMARY_CSV = "summary.csv"
#: Where each worker process (``--workers``, ``--ray``) keeps its own run directory and journal.
SHARDS_DIR = "workers"


class ResultsError(Exception):
    """The results directory cannot be used (one line)."""


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


class RunStore:
    """Writes one run's directory; also the :class:`~rtbench.client.session.Sink` sessions report to."""

    def __init__(self, root: Path, run_id: str, manifest: dict[str, Any],
                 redact: Callable[[str], str] | None = None) -> None:
        """``redact`` masks the run's secrets in every error row before it is written (a server
        may quote the credential it refused: see config/secrets.py)."""
        self.dir = root / run_id
        self._redact = redact
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
            self._turns: IO[bytes] = open(self.dir / TURNS_JOURNAL, "ab")  # noqa: SIM115
            self._errors: IO[bytes] = open(self.dir / ERRORS_JOURNAL, "ab")  # noqa: SIM115
            self._sessions: IO[bytes] = open(self.dir / SESSIONS_JOURNAL, "ab")  # noqa: SIM115
        except FileExistsError:
            raise ResultsError(f"results directory already exists: {self.dir}") from None
        except OSError as exc:
            raise ResultsError(f"cannot write results to {self.dir}: {exc.strerror}") from None
        self.recorder = Recorder()
        self.manifest = dict(manifest, run_id=run_id, status="running")
        self._write_manifest()
        self.turn_count = 0
        self.error_count = 0

    def _write_manifest(self) -> None:
        tmp = self.dir / (MANIFEST + ".tmp")
        tmp.write_bytes(_dump(self.manifest))
        os.replace(tmp, self.dir / MANIFEST)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self._write_manifest()

    def turn(self, record: TurnRecord) -> None:
        row = record.as_dict()
        bad = TURNS.clean(row)
        self._turns.write(orjson.dumps(row) + b"\n")
        self._turns.flush()
        self.turn_count += 1
        self._note_bad(row, bad)

    def error(self, record: ErrorRecord) -> None:
        row = record.as_dict()
        bad = ERRORS.clean(row)
        if self._redact is not None:
            row["message"] = self._redact(row["message"])
            if row["code"] is not None:
                row["code"] = self._redact(row["code"])
        self._errors.write(orjson.dumps(row) + b"\n")
        self._errors.flush()
        self.error_count += 1
        self._note_bad(row, bad)

    def session(self, record: SessionRecord) -> None:
        row = record.as_dict()
        bad = SESSIONS.clean(row)
        self._sessions.write(orjson.dumps(row) + b"\n")
        self._sessions.flush()
        self._note_bad(row, bad)

    def _note_bad(self, row: dict[str, Any], bad: list[tuple[str, Any]]) -> None:
        for column, value in bad:
            self.error(bad_field_note(row, column, value))

    def finalize(self, status: str, **extra: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Close journals, write tables, histograms and manifest; return (turns, errors)."""
        self._turns.close()
        self._errors.close()
        self._sessions.close()
        turns, errors = load_tables(self.dir)
        write_tables(self.dir, turns, errors, load_sessions(self.dir))
        (self.dir / HISTOGRAMS).write_bytes(_dump(self.recorder.encoded()))
        self.manifest.update(extra, status=status)
        self._write_manifest()
        return turns, errors


def write_tables(run_dir: Path, turns: pd.DataFrame, errors: pd.DataFrame,
                 sessions: pd.DataFrame) -> None:
    """The three parquet tables, each with its declared schema (results/schema.py)."""
    TURNS.write_parquet(turns, run_dir / TURNS_TABLE)
    ERRORS.write_parquet(errors, run_dir / ERRORS_TABLE)
    SESSIONS.write_parquet(sessions, run_dir / SESSIONS_TABLE)


def _read_journal(path: Path, table: TableSchema) -> pd.DataFrame:
    """A journal's rows, each checked against the table's schema (the journal may come from a
    shard, an older rtbench or a crash)."""
    rows = []
    if path.exists():
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    break  # a line cut by a crash: everything before it is intact
    return table.frame(rows)


def load_tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(turns, errors) of a run, from the journal (which survives a crash)."""
    return (_read_journal(run_dir / TURNS_JOURNAL, TURNS),
            _read_journal(run_dir / ERRORS_JOURNAL, ERRORS))


def load_sessions(run_dir: Path) -> pd.DataFrame:
    """One row per session attempt (and per dropped arrival), from the journal."""
    return _read_journal(run_dir / SESSIONS_JOURNAL, SESSIONS)


def load_manifest(run_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((run_dir / MANIFEST).read_text()))
    except FileNotFoundError:
        raise ResultsError(f"not a run directory (no {MANIFEST}): {run_dir}") from None


def load_recorder(run_dir: Path) -> Recorder:
    recorder = Recorder()
    path = run_dir / HISTOGRAMS
    if path.exists():
        recorder.merge_encoded(json.loads(path.read_text()))
    return recorder
