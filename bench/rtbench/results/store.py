"""The run directory: ``results/<run-id>/``.

Turns and errors are journaled as they happen (append-only JSON lines, flushed per row) so a
crash loses nothing already measured; ``finalize`` turns the journal into Parquet tables,
stores the encoded histograms and writes ``summary.csv``. The manifest is written first (status
``running``) and rewritten at the end (``complete`` or ``partial``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd

from ..metrics.recorder import Recorder
from ..metrics.records import ErrorRecord, SessionRecord, TurnRecord
from ..process.errors import UserError
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


class ResultsError(UserError):
    """The results directory cannot be used (one line)."""


class ResultsWriteError(ResultsError):
    """A run was measured but its results could not all be written (disk full, quota): the
    journal is intact up to the failure and ``rtbench report`` rebuilds the rest later."""

    incomplete = True        # the CLI exits 5 (incomplete), not 2 (misuse)


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


class RunStore:
    """Writes one run's directory; also the :class:`~rtbench.client.session.Sink` sessions report to."""

    def __init__(self, root: Path, run_id: str, manifest: dict[str, Any],
                 redact: Callable[[str], str] | None = None) -> None:
        """``redact`` masks the run's secrets in every error row before it is written (a server
        may quote the credential it refused: see config/secrets.py)."""
        if not run_id or run_id in (".", "..") or Path(run_id).name != run_id or "\\" in run_id:
            raise ResultsError(f"--run-id must be a plain directory name, got {run_id!r} (it is "
                               "made under --results)")
        self.dir = root / run_id
        self._redact = redact
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
            # Unbuffered: each row is one write(2), so a failed write is known at once and can
            # be cut back to the last whole line (see _append).
            self._turns: IO[bytes] = open(self.dir / TURNS_JOURNAL, "ab", buffering=0)  # noqa: SIM115
            self._errors: IO[bytes] = open(self.dir / ERRORS_JOURNAL, "ab", buffering=0)  # noqa: SIM115
            self._sessions: IO[bytes] = open(  # noqa: SIM115
                self.dir / SESSIONS_JOURNAL, "ab", buffering=0)
        except FileExistsError:
            raise ResultsError(f"results directory already exists: {self.dir}") from None
        except OSError as exc:
            raise ResultsError(f"cannot write results to {self.dir}: {exc.strerror}") from None
        self.recorder = Recorder()
        self.manifest = dict(manifest, run_id=run_id, status="running")
        self._write_manifest()
        self.turn_count = 0
        self.error_count = 0
        self.crashes = 0          # sessions ended by an exception rtbench did not expect
        #: Set at the first journal write that failed (disk full, quota, I/O error): one line
        #: naming the file. Nothing more is journaled after it, so every line kept is whole.
        self.write_failure: str | None = None
        self.rows_lost = 0
        #: Called once with ``write_failure``: the run stops there (see orchestrate/execute.py).
        self.on_write_failure: Callable[[str], None] | None = None

    def _append(self, journal: IO[bytes], data: bytes) -> bool:
        if self.write_failure is not None:
            self.rows_lost += 1
            return False
        end = journal.tell()
        try:
            if journal.write(data) != len(data):    # a short write: the disk filled up in it
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(journal.fileno(), end)  # no half line left behind
            self.write_failure = f"cannot write {journal.name}: {exc.strerror or exc}"
            self.rows_lost += 1
            if self.on_write_failure is not None:
                self.on_write_failure(self.write_failure)
            return False
        return True

    def _write_manifest(self) -> None:
        tmp = self.dir / (MANIFEST + ".tmp")
        tmp.write_bytes(_dump(self.manifest))
        os.replace(tmp, self.dir / MANIFEST)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self._write_manifest()

    def turn(self, record: TurnRecord) -> None:
        if self._journal(self._turns, TURNS, record.as_dict()):
            self.turn_count += 1

    def error(self, record: ErrorRecord) -> None:
        row = record.as_dict()
        if self._journal(self._errors, ERRORS, row, self._redact_row):
            self.error_count += 1
            self.crashes += row["kind"] == "crash"

    def session(self, record: SessionRecord) -> None:
        self._journal(self._sessions, SESSIONS, record.as_dict())

    def _redact_row(self, row: dict[str, Any]) -> None:
        if self._redact is not None:
            row["message"] = self._redact(row["message"])
            if row["code"] is not None:
                row["code"] = self._redact(row["code"])

    def _journal(self, journal: IO[bytes], table: TableSchema, row: dict[str, Any],
                 prepare: Callable[[dict[str, Any]], None] | None = None) -> bool:
        """Check ``row`` against its table (bad values become null), journal it, then note
        each bad value as a benign error row; False when the journal could not be written."""
        bad = table.clean(row)
        if prepare is not None:
            prepare(row)
        if not self._append(journal, orjson.dumps(row) + b"\n"):
            return False
        for column, value in bad:
            self.error(bad_field_note(row, column, value))
        return True

    def finalize(self, status: str, **extra: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Close journals, write tables, histograms and manifest; return (turns, errors).

        When the disk is full, what could not be written is one ResultsWriteError line; the manifest
        then still says ``running``, so ``rtbench report`` rebuilds the run from its journal."""
        for journal in (self._turns, self._errors, self._sessions):
            with contextlib.suppress(OSError):  # a failed write is already recorded
                journal.close()
        turns, errors = load_tables(self.dir)
        if self.write_failure is not None:
            extra = dict(extra, write_failure=self.write_failure, rows_lost=self.rows_lost)
        try:
            write_tables(self.dir, turns, errors, load_sessions(self.dir))
            (self.dir / HISTOGRAMS).write_bytes(_dump(self.recorder.encoded()))
            self.manifest.update(extra, status=status)
            self._write_manifest()
        except OSError as exc:
            raise ResultsWriteError(
                f"cannot write the tables of {self.dir}: {exc.strerror or exc}; its journal is "
                f"intact: `rtbench report {self.dir}` rebuilds them once there is space") from None
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


def table_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as plain dicts, a missing value (NaN, NA) as None."""
    return [{str(k): v for k, v in row.items()}
            for row in frame.astype(object).where(frame.notna(), None).to_dict("records")]


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
