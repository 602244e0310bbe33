"""Values a hostile server sends never break the write-out: each bad one becomes null plus a
benign ``protocol/bad_field`` row, and the run can always be rebuilt and reported."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtbench.analysis.report import render
from rtbench.metrics.records import TurnRecord
from rtbench.results.recover import recover
from rtbench.results.schema import TURNS
from rtbench.results.store import ERRORS_TABLE, TURNS_TABLE, RunStore, load_tables
from rtbench.results.summary import summarize

MANIFEST = {"scenario": {"turns_per_session": 2},
            "targets": [{"name": "t", "region": "r", "model": "m", "sessions": 1}]}
#: Columns the turn tracker fills from server values (response.done, speech_stopped, ids).
WIRE_FED = ("session_id", "response_id", "response_status", "status_reason", "error_code",
            "input_tokens", "output_tokens", "total_tokens", "audio_end_ms")


def _turn(turn_idx: int, **wire: Any) -> TurnRecord:
    record = TurnRecord("t", "r", "m", 0, "sess_1", turn_idx, "u", status="ok", ttfa_ms=100.0,
                        vad_ms=5.0, response_done_ms=300.0)
    for name, value in wire.items():
        setattr(record, name, value)
    return record


def test_mixed_types_and_out_of_range_tokens_become_nulls_with_notes(tmp_path: Path) -> None:
    store = RunStore(tmp_path, "run", MANIFEST)
    store.turn(_turn(0, status_reason=5, input_tokens=2**64 - 1, output_tokens=-1))
    store.turn(_turn(1, status_reason="turn_detected", input_tokens=12, output_tokens=30))
    turns, errors = store.finalize("complete")
    assert turns["status_reason"].isna().iloc[0] and turns["status_reason"].iloc[1] == "turn_detected"
    assert turns["input_tokens"].iloc[1] == 12 and turns["input_tokens"].isna().iloc[0]
    notes = errors[errors["code"] == "bad_field"]
    assert sorted(m.split(":")[0] for m in notes["message"]) == [
        "input_tokens", "output_tokens", "status_reason"]
    assert set(notes["severity"]) == {"benign"} and set(notes["kind"]) == {"protocol"}
    table = pq.read_table(tmp_path / "run" / TURNS_TABLE)
    assert table.schema.field("input_tokens").type == "int64"
    assert pq.read_table(tmp_path / "run" / ERRORS_TABLE).num_rows == 3
    assert "<html" in render(tmp_path / "run").lower()


_ANY = st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() \
    | st.text(max_size=20) | st.lists(st.integers(), max_size=3) | st.dictionaries(
        st.text(max_size=3), st.integers(), max_size=2)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.fixed_dictionaries({}, optional={c: _ANY for c in WIRE_FED}),
                       min_size=1, max_size=4))
def test_any_wire_values_write_out_recover_and_report(tmp_path: Path,
                                                      values: list[dict[str, Any]]) -> None:
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    store = RunStore(tmp_path, "run", MANIFEST)
    for i, wire in enumerate(values):
        store.turn(_turn(i, **wire))
    turns, errors = store.finalize("complete")
    assert len(turns) == len(values)
    for row in turns.to_dict("records"):          # every kept value fits its column
        clean = {k: (None if v != v else v) for k, v in row.items()}
        clean = {k: (int(v) if isinstance(v, float) and TURNS_KIND.get(k) == "int" else v)
                 for k, v in clean.items()}
        assert TURNS.clean(clean) == []
    summarize(turns, errors, store.recorder, MANIFEST["targets"], 2)
    recover(run)                                  # the run can always be rebuilt ...
    assert len(load_tables(run)[0]) == len(values)
    assert "<html" in render(run).lower()         # ... and reported


TURNS_KIND = {c.name: c.kind for c in TURNS.columns}
