"""Recovery of a run whose parent process died: every row any journal holds comes back."""

from __future__ import annotations

from pathlib import Path

from rtbench.metrics.records import ErrorRecord, SessionRecord, TurnRecord
from rtbench.results.recover import recover
from rtbench.results.store import SHARDS_DIR, TURNS_JOURNAL, RunStore, load_manifest, load_tables

MANIFEST = {"scenario": {"turns_per_session": 3},
            "targets": [{"name": "sim", "region": "local", "model": "m", "sessions": 4}]}


def _turn(session_idx: int, turn_idx: int) -> TurnRecord:
    return TurnRecord("sim", "local", "m", session_idx, f"sess_{session_idx}", turn_idx, "u",
                      status="ok", ttfa_ms=100.0 + turn_idx, vad_ms=5.0, response_done_ms=300.0)


def test_a_parent_killed_while_workers_ran_loses_no_shard_row(tmp_path: Path) -> None:
    parent = RunStore(tmp_path, "run", MANIFEST)          # never finalized: status "running"
    for shard, sessions in ((0, (0, 2)), (1, (1, 3))):
        store = RunStore(parent.dir / SHARDS_DIR, f"w{shard}", {})
        for s in sessions:
            for t in range(3):
                store.turn(_turn(s, t))
            store.session(SessionRecord("sim", "local", "m", s, s, 0, f"sess_{s}", 0.0, 0.0, 0.0,
                                        10.0, 20.0, turns_ok=3))
        store.error(ErrorRecord("sim", "local", "m", sessions[0], None, 0, "turn", "close", "1006",
                                "lost", 1.0))
    with open(parent.dir / SHARDS_DIR / "w1" / TURNS_JOURNAL, "ab") as cut:
        cut.write(b'{"target": "sim", "sess')           # the line the kill cut short
    got = recover(parent.dir)
    turns, errors = load_tables(parent.dir)
    assert got["turns"] == len(turns) == 12 and got["errors"] == len(errors) == 2
    assert got["from_shards"] == 2 and got["sessions"] == 4
    assert sorted(zip(turns["session_idx"], turns["turn_idx"], strict=True)) == [
        (s, t) for s in range(4) for t in range(3)]
    assert load_manifest(parent.dir)["status"] == "recovered"


def test_recovering_twice_counts_each_row_once(tmp_path: Path) -> None:
    """A parent that merged some shard rows before dying: the shards alone are the truth."""
    parent = RunStore(tmp_path, "run", MANIFEST)
    parent.turn(_turn(0, 0))                             # merged before the kill
    store = RunStore(parent.dir / SHARDS_DIR, "w0", {})
    store.turn(_turn(0, 0))
    store.turn(_turn(0, 1))
    assert recover(parent.dir)["turns"] == 2
    assert recover(parent.dir)["turns"] == 2


def test_a_run_id_that_is_a_path_is_refused(tmp_path: Path) -> None:
    import pytest

    from rtbench.results.store import ResultsError

    for bad in ("/abs/path", "../up", "a/b", "..", ""):
        with pytest.raises(ResultsError, match="plain directory name"):
            RunStore(tmp_path / "results", bad, {})
    assert not (tmp_path / "abs").exists() and not (tmp_path / "up").exists()


def test_a_premature_turn_is_counted_but_stays_out_of_the_rebuilt_histograms(
        tmp_path: Path) -> None:
    from dataclasses import replace

    from rtbench.results.store import load_recorder
    from rtbench.results.summary import summarize

    parent = RunStore(tmp_path, "run", MANIFEST)
    store = RunStore(parent.dir / SHARDS_DIR, "w0", {})
    store.turn(_turn(0, 0))
    store.turn(replace(_turn(0, 1), premature=True, vad_ms=-250.0, ttfa_ms=-40.0))
    recover(parent.dir)
    recorder = load_recorder(parent.dir)
    turns, errors = load_tables(parent.dir)
    assert recorder.series("sim", "ttfa_ms").histogram.get_total_count() == 1
    assert recorder.series("sim", "vad_ms").out_of_range == 0  # not clamped, not "out of range"
    summary = summarize(turns, errors, recorder, MANIFEST["targets"], 3)  # type: ignore[arg-type]
    assert (summary.loc[0, "premature"], summary.loc[0, "premature_rate"]) == (1, 0.5)
    assert summary.loc[0, "ttfa_ms_count"] == 1
