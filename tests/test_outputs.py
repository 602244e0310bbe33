"""``--out json=FILE``: k6-style metric samples, streamed from the journal while the run goes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import trio

from rtbench.live.outputs import OutError, outputs_watcher, parse_out
from rtbench.live.progress import RunProgress
from rtbench.live.samples import JournalTail
from rtbench.metrics.records import ErrorRecord, TurnRecord
from rtbench.results.store import TURNS_JOURNAL, RunStore

if TYPE_CHECKING:
    from gatehelp import RunSim

pytest_plugins = ["gatehelp"]   # fixture: run_sim


def k6_lines(path: Path) -> list[dict[str, Any]]:
    """The file's objects, checked against k6's shape: each metric declared once, first."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    declared: set[str] = set()
    for obj in lines:
        assert obj["type"] in ("Metric", "Point"), obj
        if obj["type"] == "Metric":
            assert obj["metric"] not in declared and obj["data"]["name"] == obj["metric"]
            assert obj["data"]["type"] in ("trend", "counter")
            declared.add(obj["metric"])
        else:
            assert obj["metric"] in declared, obj
            assert dt.datetime.fromisoformat(obj["data"]["time"]).tzinfo is not None
            assert isinstance(obj["data"]["value"], float)
            assert all(isinstance(v, str) for v in obj["data"]["tags"].values())
    return lines


def points(lines: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    return [o["data"] for o in lines if o["type"] == "Point" and o["metric"] == metric]


def test_run_writes_every_sample_to_each_json_out(run_sim: RunSim, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    code, out, run = run_sim(tmp_path, "k6", 300, "--no-report", "--out", f"json={a}",
                             "--out", f"json={b}")
    assert code == 0, out
    assert a.read_text() == b.read_text()
    lines = k6_lines(a)
    turns = pd.read_parquet(run / "turns.parquet")
    sessions = pd.read_parquet(run / "sessions.parquet")
    ttfa = points(lines, "ttfa_ms")
    assert sorted(p["value"] for p in ttfa) == sorted(turns["ttfa_ms"])
    assert {p["tags"]["session_id"] for p in ttfa} == set(sessions["session_id"])
    assert len(points(lines, "turns")) == len(turns) == 8
    assert len(points(lines, "connect_ms")) == len(points(lines, "sessions")) == 4
    assert points(lines, "errors") == []


async def test_samples_are_written_while_the_run_goes(tmp_path: Path) -> None:
    store = RunStore(tmp_path, "live", {"started_at": "2026-12-01T10:00:00+00:00"})
    out = tmp_path / "live.json"
    watch = outputs_watcher([parse_out(f"json={out}")], every_s=0.02)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, store, RunProgress(), nursery.cancel_scope)
            store.turn(TurnRecord("eu/m", "eu", "m", 0, "s0", 0, "u", "ok", t_start_s=2.5,
                                  ttfa_ms=512.0))
            while not (out.exists() and points(k6_lines(out), "ttfa_ms")):
                await trio.sleep(0.02)      # the run is still going: the watcher wrote it
            store.error(ErrorRecord("eu/m", "eu", "m", 1, None, None, "connect", "http_status",
                                    "429", "rate limited", 3.0))
            nursery.cancel_scope.cancel()   # the run ends: the last rows are flushed
    lines = k6_lines(out)
    (ttfa,) = points(lines, "ttfa_ms")
    assert ttfa["value"] == 512.0 and ttfa["time"] == "2026-12-01T10:00:02.500000+00:00"
    (err,) = points(lines, "errors")
    assert err["tags"] == {"target": "eu/m", "region": "eu", "model": "m", "phase": "connect",
                           "kind": "http_status", "code": "429", "severity": "retryable"}


def test_a_line_being_written_waits_for_the_next_read(tmp_path: Path) -> None:
    store = RunStore(tmp_path, "tail", {"started_at": "2026-12-01T10:00:00+00:00"})
    tail = JournalTail(store.dir, "2026-12-01T10:00:00+00:00")
    row = json.dumps(TurnRecord("eu/m", "eu", "m", 0, None, 0, "u", "timeout").as_dict())
    with open(store.dir / TURNS_JOURNAL, "ab") as fh:
        fh.write(row[:40].encode())
        fh.flush()
        assert tail.read() == []
        fh.write(row[40:].encode() + b"\n")
    (sample,) = tail.read()     # a failed turn: counted, no latency
    assert sample.metric == "turns" and sample.tags["status"] == "timeout"
    assert tail.read() == []


@pytest.mark.parametrize("text", ["json", "json=", "csv=x.csv", "otlp=localhost:4318"])
def test_bad_out_values_are_refused(text: str) -> None:
    with pytest.raises(OutError, match="--out"):
        parse_out(text)
