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
from ..metrics.records import (
    ERROR_COLUMNS,
    SESSION_COLUMNS,
    TURN_COLUMNS,
    ErrorRecord,
    SessionRecord,
    TurnRecord,
)

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
        self._turns.write(orjson.dumps(record.as_dict()) + b"\n")
        self._turns.flush()
        self.turn_count += 1

    def error(self, record: ErrorRecord) -> None:
        if self._redact is not None:
            record.message = self._redact(record.message)
            if record.code is not None:
                record.code = self._redact(record.code)
        self._errors.write(orjson.dumps(record.as_dict()) + b"\n")
        self._errors.flush()
        self.error_count += 1

    def session(self, record: SessionRecord) -> None:
        self._sessions.write(orjson.dumps(record.as_dict()) + b"\n")
        self._sessions.flush()

    def finalize(self, status: str, **extra: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Close journals, write tables, histograms and manifest; return (turns, errors)."""
        self._turns.close()
        self._errors.close()
        self._sessions.close()
        turns, errors = load_tables(self.dir)
        load_sessions(self.dir).to_parquet(self.dir / SESSIONS_TABLE, index=False)
        turns.to_parquet(self.dir / TURNS_TABLE, index=False)
        errors.to_parquet(self.dir / ERRORS_TABLE, index=False)
        (self.dir / HISTOGRAMS).write_bytes(_dump(self.recorder.encoded()))
        self.manifest.update(extra, status=status)
        self._write_manifest()
        return turns, errors


def _read_journal(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    if path.exists():
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    break  # a line cut by a crash: everything before it is intact
    return pd.DataFrame(rows, columns=list(columns))


def load_tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(turns, errors) of a run, from the journal (which survives a crash)."""
    return (_read_journal(run_dir / TURNS_JOURNAL, TURN_COLUMNS),
            _read_journal(run_dir / ERRORS_JOURNAL, ERROR_COLUMNS))


def load_sessions(run_dir: Path) -> pd.DataFrame:
    """One row per session attempt (and per dropped arrival), from the journal."""
    return _read_journal(run_dir / SESSIONS_JOURNAL, SESSION_COLUMNS)


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
