"""The tables' schema, declared once from the row records, and the check every row passes.

A value read from the wire can be anything a server sends: ``status_details.reason`` a number
in one turn and a string in the next, token counts of 2**64-1 or -1. Such a value entering a
row made the tables unwritable (``ArrowInvalid``, ``OverflowError``) and the run unrecoverable.
So every row is checked against its column's type and range before it is journaled: a bad value
becomes ``null`` and is reported (``protocol/bad_field``, benign) instead; the journal, the
recovery and the parquet tables all use the same Arrow schema, derived here from the
dataclasses in metrics/records.py.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..metrics.records import ErrorRecord, SessionRecord, TurnRecord

_INT64_MAX = 2**63 - 1
_ARROW = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
#: Columns that count something: never negative.
NON_NEGATIVE = frozenset({"input_tokens", "output_tokens", "total_tokens", "output_audio_ms",
                          "audio_end_ms", "truncate_audio_end_ms", "turns_ok", "turns_failed",
                          "output_items", "preamble_audio_ms"})


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str            # str | int | float | bool
    nullable: bool
    default: Any

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.kind == "str":
            return isinstance(value, str)
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.kind == "int" and not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            return False
        return not (self.name in NON_NEGATIVE and value < 0)

    def substitute(self) -> Any:
        """What a rejected value becomes: null, or the column's default where it has no null."""
        return None if self.nullable else self.default


class TableSchema:
    """One table: its columns (in record order) and its Arrow schema."""

    def __init__(self, record: type) -> None:
        self.columns: tuple[Column, ...] = tuple(
            Column(f.name, str(f.type).split("|")[0].strip(), "None" in str(f.type),
                   None if f.default is MISSING else f.default)
            for f in fields(record))
        self.names = tuple(c.name for c in self.columns)
        self.arrow = pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in self.columns])

    def clean(self, row: dict[str, Any]) -> list[tuple[str, Any]]:
        """Replace every value the column cannot hold, in place; return (column, value) of each."""
        bad = []
        for column in self.columns:
            value = row.get(column.name, column.substitute())
            if not column.accepts(value):
                bad.append((column.name, value))
                value = column.substitute()
            row[column.name] = value
        return bad

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        for row in rows:
            self.clean(row)
        return pd.DataFrame(rows, columns=list(self.names))

    def write_parquet(self, frame: pd.DataFrame, path: Any) -> None:
        pq.write_table(pa.Table.from_pandas(frame, schema=self.arrow, preserve_index=False), path)


TURNS = TableSchema(TurnRecord)
ERRORS = TableSchema(ErrorRecord)
SESSIONS = TableSchema(SessionRecord)


def bad_field_note(row: dict[str, Any], column: str, value: Any) -> ErrorRecord:
    """The benign error row that says which wire value was dropped from ``row`` (a row already
    cleaned by :meth:`TableSchema.clean`, so the note itself is always valid)."""
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    turn_idx = row.get("turn_idx")
    t_s = row.get("t_start_s", row.get("t_s", row.get("start_s"))) or 0.0
    return ErrorRecord(row["target"], row["region"], row["model"], row["session_idx"],
                       row["session_id"], turn_idx, "turn" if turn_idx is not None else "session",
                       "protocol", "bad_field", f"{column}: {shown} is not a valid value; kept null",
                       float(t_s), severity="benign", attempt=int(row.get("attempt", 0)))
