"""Live counters, monitors, abort-on-fail and the HdrHistogram interval log."""

from __future__ import annotations

import gc
import io
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from rtbench.client.engine import RunPlan, run_sessions
from rtbench.config.scenario import Scenario, Target
from rtbench.live.progress import ProgressSink, RunProgress
from rtbench.metrics.recorder import Recorder
from rtbench.protocol import TurnDetection
from rtbench.results.intervallog import IntervalLog, read_hlog, tag_for
from rtbench.results.store import RunStore, load_recorder
from rtbench.sim import Dist, Profile
from test_integration import _plans

from conftest import memory_sim, rtbench_in_process
from test_cli import rtbench

if TYPE_CHECKING:
    from gatehelp import RunSim

pytest_plugins = ["gatehelp"]


def _fast(sc: Scenario, turns: int) -> Scenario:
    return replace(sc, turns_per_session=turns, trailing_silence_ms=300, think_time_ms=50,
                   session=replace(sc.session, turn_detection=TurnDetection(silence_duration_ms=200)))


async def test_progress_counts_sessions_and_a_monitor_can_stop_the_run(
        autojump_clock: trio.testing.MockClock, scenario: Scenario, tmp_path: Path) -> None:
    sc = _fast(scenario, turns=20)
    seen: list[tuple[int, int, int]] = []
    progress = RunProgress()

    async def stop_after_four_turns(scope: trio.CancelScope) -> None:
        while progress.turns_done < 4:
            seen.append((progress.connecting, progress.active, progress.finished))
            await trio.sleep(0.05)
        scope.cancel()

    # in memory on the mock clock: the counters are checked, and the rolling TTFA exactly
    async with memory_sim(Profile(first_audio=Dist(200.0), response_audio_ms=200)) as (_, connect):
        store = RunStore(tmp_path, "run", {})
        with trio.fail_after(30):
            target = Target(name="sim", url="ws://sim.invalid/v1/realtime?model=m")
            await run_sessions(RunPlan(sc, [target], 3), _plans(sc), ProgressSink(store, progress), progress,
                               [stop_after_four_turns], connect=connect)
    turns, _ = store.finalize("aborted")
    # Stopped early (20 turns × 3 sessions were planned), and every row reached the store.
    assert 4 <= progress.turns_done < 60 and len(turns) == progress.turns_done
    assert progress.turns_ok == progress.turns_done
    assert all(min(snap) >= 0 and sum(snap) <= 3 for snap in seen)
    assert any(active == 3 for _, active, _ in seen)
    assert (progress.connecting, progress.active, progress.finished) == (0, 0, 3)
    p50, p95, n = progress.rolling_ttfa(trio.current_time())
    assert n == progress.turns_done
    assert (p50, p95) == (pytest.approx(200.0, abs=1e-3), pytest.approx(200.0, abs=1e-3))


def test_interval_log_writes_only_what_changed() -> None:
    rec = Recorder()
    out = io.StringIO()
    log = IntervalLog(out, rec, start_epoch_s=1_700_000_000.0)
    for v in range(1, 101):
        rec.record_ms("t", "ttfa_ms", float(v))
    rec.record_ms("t", "vad_ms", 5.0)
    assert log.tick(1.0) == 2
    assert log.tick(2.0) == 0            # nothing changed: no interval
    for v in range(500, 550):
        rec.record_ms("t", "ttfa_ms", float(v))
    assert log.tick(3.0) == 1
    text = out.getvalue()
    assert text.count("Tag=ttfa_ms|t,") == 2 and "#[StartTime: 1700000000.000" in text


def test_interval_log_file_round_trip(tmp_path: Path) -> None:
    rec = Recorder()
    path = tmp_path / "x.hlog"
    with open(path, "w") as out:
        log = IntervalLog(out, rec, start_epoch_s=1_700_000_000.0)
        for v in range(1, 101):
            rec.record_ms("a b,c", "ttfa_ms", float(v))
        log.tick(1.0)
        for v in range(500, 550):
            rec.record_ms("a b,c", "ttfa_ms", float(v))
        log.tick(2.5)
    intervals = read_hlog(path)
    assert [h.get_tag() for h in intervals] == [tag_for("a b,c", "ttfa_ms")] * 2 == ["ttfa_ms|a_b_c"] * 2
    assert [h.get_total_count() for h in intervals] == [100, 50]
    assert intervals[1].get_min_value() >= 499_000 and intervals[0].get_max_value() < 101_000
    # Interval start/end are relative to the log's StartTime.
    assert intervals[1].get_start_time_stamp() == 1_700_000_001_000.0
    assert intervals[1].get_end_time_stamp() == 1_700_000_002_500.0


def test_run_writes_an_hlog_whose_totals_match_the_histograms(fast_run: Path) -> None:
    totals: dict[str, int] = {}
    for hist in read_hlog(fast_run / "intervals.hlog"):
        totals[hist.get_tag()] = totals.get(hist.get_tag(), 0) + hist.get_total_count()
    rec = load_recorder(fast_run)
    expected = {tag_for(t, m): s.histogram.get_total_count() for (t, m), s in rec.items()}
    assert totals == expected
    assert totals["ttfa_ms|local/sim-realtime"] == 8


@pytest.mark.slow
def test_abort_on_fail_stops_a_run_whose_budget_is_broken(tmp_path: Path, run_sim: RunSim) -> None:
    code, out, run = run_sim(tmp_path, "abort", 300, "--turns", "10", "--progress", "off",
                             "--budget", "ttfa.p50 < 100ms", "--budget", "errors < 1000",
                             "--abort-on-fail", "--abort-min-turns", "4")
    assert code == 4, out
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "aborted"
    assert manifest["aborted"]["budgets"] == ["ttfa.p50 < 100ms"]
    assert "rtbench: aborting at" in out
    turns = (run / "turns.jsonl").read_text().splitlines()
    assert 4 <= len(turns) < 40          # 4 sessions × 10 turns were planned
    again = rtbench("gate", str(run))
    assert again.returncode == 4 and "FAIL ttfa.p50 < 100ms" in again.stdout


@pytest.mark.slow
def test_the_generators_loop_lag_never_aborts_a_run_early(tmp_path: Path, run_sim: RunSim) -> None:
    """A loop-lag budget no run can meet (p99 under 1 µs) with --abort-on-fail: the run still
    runs to its end (the loop is probed every 10 ms, so 20 samples arrived in the first 0.2 s
    and used to abort it there), then the gate fails it on the whole run's p99."""
    code, out, run = run_sim(tmp_path, "lag", 300, "--progress", "off",
                             "--budget", "loop_lag.p99 < 1us", "--abort-on-fail")
    assert code == 4, out
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "aborted" not in manifest
    assert "rtbench: aborting" not in out and "FAIL loop_lag.p99 < 1us: observed" in out
    assert len((run / "turns.jsonl").read_text().splitlines()) == 8   # 4 sessions x 2 turns


def test_abort_on_fail_needs_a_budget(tmp_path: Path) -> None:
    proc = rtbench_in_process("--sessions", "1", "--results", str(tmp_path), "--abort-on-fail")
    assert proc.returncode == 2 and "needs at least one budget" in proc.stderr


def test_interval_log_ticks_leave_no_reference_cycles() -> None:
    """A soak ticks the log for hours: each tick must be freed by reference counting alone."""
    rec = Recorder()
    log = IntervalLog(io.StringIO(), rec, start_epoch_s=1_700_000_000.0)
    rec.record_ms("t", "ttfa_ms", 1.0)
    log.tick(1.0)                         # first tick builds the per-series state
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for second in range(2, 52):
            rec.record_ms("t", "ttfa_ms", float(second))
            rec.record_ms("t", "vad_ms", float(second))
            assert log.tick(float(second)) == 2
        gc.collect()
        kinds = Counter(type(o).__module__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not {k: n for k, n in kinds.items() if k.startswith(("hdrh", "rtbench"))}
