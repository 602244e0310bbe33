"""How many real-time sessions does ONE client core sustain? (and the simulator's core?)

    python bench/perf/sessions_per_core.py [--quick] [--repeats 3] [--chunk-ms 20 100] [--tls]
                                           [--paths cli engine] [--hlog-interval-s 1]
    python bench/perf/sessions_per_core.py --fixed N        # one trial of N sessions
    python bench/perf/sessions_per_core.py --memory 1000    # RSS per waiting session
    python bench/perf/sessions_per_core.py --soak 200       # RSS of both processes, 10 minutes

Each trial starts a fresh simulator (``python -m rtbench serve --port 0``) pinned to one core
and a client pinned to the other, ramps N sessions up at ``--connect-rate`` (default scenario:
real speech turns, server VAD, silence, responses), lets them settle and measures a window.

**The figure is the command users run** (path ``cli``): ``rtbench --url ... --sessions N
--ramp-up ... --duration ... --turns 1000000 --progress plain --no-report``, every watcher on as
a user gets them (journal, live tally, progress lines, interval log, loop-lag probe, loop-stall
instrument, saturation verdict). The window is whole intervals of that run's own interval log
(``--hlog-interval-s``, the command's default 5 s): the client's send lateness is the sum of
those intervals, and CPU figures are read from /proc when the first and last of them appear.
Path ``engine`` is the idealized second row: ``run_sessions`` in a child process with a sink
that keeps nothing and no watcher.

N passes when the client's send lateness p99 (against each chunk's absolute deadline) < 5 ms,
its CPU <= 75 % of a core and no session failed. The simulator keeps up when its own send
lateness p99 (two snapshots of its stats file, rewritten every second) < 5 ms too; the summary
says whether it does at the client's maximum. Every trial also prints the share of CPU time
the hypervisor stole from the machine meanwhile (``steal`` in /proc/stat) and the run's worst
loop stall with its CPU time (wall far above CPU is preemption, not rtbench's work).

The search steps N up by x1.5 until a trial fails, then bisects; the whole search is repeated
and the median maximum reported with the spread, because the machine is shared and timing
noise is real. ``--tls`` runs every search over ws:// and wss:// (``rtbench serve --tls
self-signed``, whose CA the client trusts) and prints wss as a share of ws.

Why subprocesses: a client in the parent would share the interpreter with the bookkeeping, and
a fresh process per trial gives every N the same clean start (heap, sockets, CPU accounting).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

REPO = Path(__file__).resolve().parents[2]
LATENESS_LIMIT_MS = 5.0
CPU_LIMIT = 0.75
CLIENT_CORE, SIM_CORE = 0, 1


# -- helpers shared by parent and child ------------------------------------------------------

def _pin(core: int) -> None:
    """Pin the calling process to one core (no-op where affinity is unsupported)."""
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


def _rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc/<pid>/stat)."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


# -- the child: one trial --------------------------------------------------------------------

def run_trial(ns: argparse.Namespace) -> None:
    """Drive ``ns.trial`` sessions against ``ns.url``; print WINDOW, then one JSON result."""
    import trio

    from rtbench.client.engine import RunPlan, run_sessions
    from rtbench.client.loadmodel import LoadModel
    from rtbench.client.workload import load_utterance, plan_chunks
    from rtbench.config.scenario import Target, load_scenario
    from rtbench.metrics.recorder import BUNCHED_CHUNKS, GENERATOR, LOOP_LAG, SEND_LATENESS, Recorder
    from rtbench.metrics.records import ErrorRecord, SessionRecord, TurnRecord

    _pin(CLIENT_CORE)
    sc = load_scenario(REPO / "workloads" / "default.toml")
    sc = replace(sc, chunk_ms=ns.chunk_ms, turns_per_session=1_000_000,
                 turn_timeout_s=ns.turn_timeout_s, connect_timeout_s=30.0)
    plans = [plan_chunks(load_utterance(sc.audio_dir / f"{u}.wav"), sc.chunk_ms)
             for u in sc.utterances]
    target = Target(name="sim", url=ns.url, ca_file=ns.ca_file)
    total_s = ns.ramp_s + ns.settle_s + ns.measure_s
    plan = RunPlan(sc, [target], ns.trial,
                   load=LoadModel(sessions=ns.trial, ramp_up_s=ns.ramp_s, duration_s=total_s + 60))

    class Sink:
        def __init__(self) -> None:
            self.recorder = Recorder()
            self.turns: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()

        def turn(self, record: TurnRecord) -> None:
            self.turns[record.status] += 1

        def error(self, record: ErrorRecord) -> None:
            if record.severity != "benign":
                self.errors[f"{record.phase}/{record.code}"] += 1

        def session(self, record: SessionRecord) -> None:
            pass

    sink = Sink()
    rss_base = _rss_mb()[0]

    async def main() -> dict[str, Any]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_sessions, plan, plans, sink)
            await trio.sleep(ns.ramp_s + ns.settle_s)
            late = sink.recorder.series("sim", SEND_LATENESS).histogram
            lag = sink.recorder.series(GENERATOR, LOOP_LAG).histogram
            late.reset()
            lag.reset()
            bunched0 = sink.recorder.counters.get(BUNCHED_CHUNKS, 0)
            turns0, errors0 = sum(sink.turns.values()), Counter(sink.errors)
            print("WINDOW", flush=True)
            cpu0, wall0 = time.process_time(), time.monotonic()
            await trio.sleep(ns.measure_s)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            rss, hwm = _rss_mb()
            out = {
                "sessions": ns.trial, "chunk_ms": ns.chunk_ms,
                "late_p50_ms": late.get_value_at_percentile(50) / 1000,
                "late_p99_ms": late.get_value_at_percentile(99) / 1000,
                "late_max_ms": late.get_max_value() / 1000,
                "chunks": late.get_total_count(),
                "loop_lag_p99_ms": lag.get_value_at_percentile(99) / 1000,
                "bunched": sink.recorder.counters.get(BUNCHED_CHUNKS, 0) - bunched0,
                "client_cpu": cpu / wall,
                "turns": sum(sink.turns.values()) - turns0,
                "turns_ok_total": sink.turns["ok"],
                "errors": dict(sink.errors - errors0),
                "errors_total": sum(sink.errors.values()),
                "rss_mb": rss, "rss_peak_mb": hwm, "rss_base_mb": rss_base,
            }
            nursery.cancel_scope.cancel()
        return out

    print(json.dumps(trio.run(main)), flush=True)
    os._exit(0)  # do not wait for N sockets to close politely


# -- the child: memory of waiting sessions ---------------------------------------------------

def run_memory(ns: argparse.Namespace) -> None:
    """N sessions connect, configure, speak one utterance and wait for a response that the
    simulator holds back (first audio after 10 min): RSS delta per waiting session."""
    import gc

    import trio

    from rtbench.client.engine import RunPlan, run_sessions
    from rtbench.client.loadmodel import LoadModel
    from rtbench.client.workload import load_utterance, plan_chunks
    from rtbench.config.scenario import Target, load_scenario
    from rtbench.metrics.recorder import Recorder
    from rtbench.metrics.records import ErrorRecord, SessionRecord, TurnRecord

    _pin(CLIENT_CORE)
    sc = load_scenario(REPO / "workloads" / "default.toml")
    sc = replace(sc, chunk_ms=ns.chunk_ms, turns_per_session=1, turn_timeout_s=600.0,
                 connect_timeout_s=30.0)
    plans = [plan_chunks(load_utterance(sc.audio_dir / f"{u}.wav"), sc.chunk_ms)
             for u in sc.utterances]

    class Sink:
        recorder = Recorder()
        errors = 0

        def turn(self, record: TurnRecord) -> None:
            pass

        def error(self, record: ErrorRecord) -> None:
            self.errors += 1

        def session(self, record: SessionRecord) -> None:
            pass

    sink = Sink()
    n = ns.memory
    plan = RunPlan(sc, [Target(name="sim", url=ns.url, ca_file=ns.ca_file)], n,
                   load=LoadModel(sessions=n, ramp_up_s=ns.ramp_s))

    async def main() -> dict[str, Any]:
        gc.collect()
        base = _rss_mb()[0]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_sessions, plan, plans, sink)
            created = sink.recorder.series("sim", "session_created_ms").histogram
            with trio.move_on_after(ns.ramp_s + 60.0):
                while created.get_total_count() < n:
                    await trio.sleep(0.5)
            await trio.sleep(8.0)  # every session spoke its utterance (<= ~4 s) and now waits
            gc.collect()
            rss, hwm = _rss_mb()
            stats = trio.lowlevel.current_statistics()
            nursery.cancel_scope.cancel()
        live = created.get_total_count()
        return {"sessions": live, "chunk_ms": ns.chunk_ms, "rss_base_mb": base, "rss_mb": rss,
                "rss_peak_mb": hwm, "kib_per_session": (rss - base) * 1024 / max(1, live),
                "tasks": stats.tasks_living, "errors": sink.errors}

    print(json.dumps(trio.run(main)), flush=True)
    os._exit(0)


# -- the parent: simulator, trials, search ---------------------------------------------------

class Simulator:
    """``rtbench serve`` in its own process pinned to SIM_CORE, counting into a stats file;
    over wss:// with a self-signed certificate whose CA file it writes when ``tls``."""

    def __init__(self, extra: list[str], tls: bool = False) -> None:
        folder = Path(tempfile.mkdtemp(prefix="rtbench-perf-"))
        self.stats_file = folder / "sim-stats.json"
        self.ca_file = str(folder / "ca.pem") if tls else None
        tls_args = ["--tls", "self-signed", "--tls-ca-out", self.ca_file] if self.ca_file else []
        cmd = [sys.executable, "-m", "rtbench", "serve", "--port", "0", "--seed", "1",
               "--stats-file", str(self.stats_file), *tls_args, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=lambda: _pin(SIM_CORE),
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        scheme = "wss" if tls else "ws"
        self.url = (f"{scheme}://{line.removeprefix('listening on ')}"
                    "/v1/realtime?model=gpt-realtime-2")

    def client_args(self) -> list[str]:
        """How a client child reaches it: the URL, and the CA to trust over TLS."""
        return ["--url", self.url, *(["--ca-file", self.ca_file] if self.ca_file else [])]

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)

    def rss_mb(self) -> float:
        return _rss_mb(self.proc.pid)[0]

    def lateness(self) -> HdrHistogram | None:
        """Its send lateness so far (µs), from the latest stats file (at most ~1 s old);
        None before the first write."""
        try:
            encoded = json.loads(self.stats_file.read_text())["send_lateness_hdr"]
        except (OSError, ValueError, KeyError):
            return None
        return HdrHistogram.decode(encoded)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.stats_file.parent, ignore_errors=True)


def window_p99_ms(before: HdrHistogram | None, after: HdrHistogram | None) -> float:
    """p99 (ms) of what was recorded between two snapshots of one cumulative histogram."""
    if after is None:
        return math.inf
    counts = {v.value_iterated_to: v.count_at_value_iterated_to
              for v in after.get_recorded_iterator()}
    for v in before.get_recorded_iterator() if before is not None else ():
        counts[v.value_iterated_to] -= v.count_at_value_iterated_to
    total = sum(counts.values())
    if total <= 0:
        return math.inf
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= 0.99 * total:
            return float(value) / 1000.0
    return math.inf


def _ramp_s(sessions: int, ns: argparse.Namespace) -> float:
    """Ramp-up time for N sessions at ``--connect-rate`` (at least 2 s)."""
    return max(2.0, sessions / float(ns.connect_rate))


def _child(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: _pin(CLIENT_CORE))


def trial(n: int, chunk_ms: int, ns: argparse.Namespace, tls: bool = False,
          path: str = "cli") -> dict[str, Any]:
    """One trial of N sessions against a simulator of its own (over wss:// if ``tls``), through
    the ``rtbench`` command (``path="cli"``) or the bare engine (``"engine"``)."""
    sim = Simulator([], tls)
    try:
        result = (_cli_trial if path == "cli" else _engine_trial)(sim, n, chunk_ms, ns)
    finally:
        sim.close()
    result["sim_kept_up"] = result["sim_late_p99_ms"] < LATENESS_LIMIT_MS
    result["scheme"] = "wss" if tls else "ws"
    result["path"] = path
    result["load1"] = os.getloadavg()[0]
    result["passed"] = (result["late_p99_ms"] < LATENESS_LIMIT_MS
                        and result["client_cpu"] <= CPU_LIMIT and not result["errors_total"])
    return result


class Steal:
    """The share of the machine's CPU time the hypervisor took (``steal`` in /proc/stat) between
    two readings: on a shared VM it delays both processes however little they use."""

    def __init__(self) -> None:
        self._first = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[7] if len(fields) > 7 else 0, sum(fields[:8])

    def fraction(self) -> float:
        steal, total = self._read()
        return (steal - self._first[0]) / max(1, total - self._first[1])


def _spin_gaps(core: int, seconds: float, out: Any) -> None:
    """In a child: spin on ``core`` for ``seconds``, then report the pauses it suffered."""
    _pin(core)
    end = time.perf_counter() + seconds
    last, gaps = time.perf_counter(), []
    while last < end:
        now = time.perf_counter()
        if now - last > 0.001:
            gaps.append(now - last)
        last = now
    out.put((core, len(gaps), max(gaps, default=0.0), sum(gaps)))


def machine_check(seconds: float = 3.0) -> str:
    """How often this machine stops a process that only computes: one spinning process per
    core (no I/O, no allocation) counts the gaps over 1 ms between two clock reads, beside
    the hypervisor's steal meanwhile. A pause here is a pause in every trial: when they reach
    5 ms the pass criterion (send lateness p99 < 5 ms) measures the machine, not rtbench."""
    import multiprocessing

    queue: Any = multiprocessing.Queue()
    steal = Steal()
    procs = [multiprocessing.Process(target=_spin_gaps, args=(core, seconds, queue))
             for core in (CLIENT_CORE, SIM_CORE)]
    for p in procs:
        p.start()
    results = sorted(queue.get() for _ in procs)
    for p in procs:
        p.join()
    parts = [f"core {core}: {n} pauses over 1 ms, longest {1000 * worst:.1f} ms, "
             f"{100 * total / seconds:.1f} % of the time" for core, n, worst, total in results]
    return (f"machine check ({seconds:g} s spinning on each core): " + "; ".join(parts)
            + f"; hypervisor steal {100 * steal.fraction():.0f} %")


def _engine_trial(sim: Simulator, n: int, chunk_ms: int, ns: argparse.Namespace
                  ) -> dict[str, Any]:
    """The idealized figure: ``run_sessions`` with a sink that keeps nothing, no watcher."""
    ramp = _ramp_s(n, ns)
    proc = _child(["--trial", str(n), *sim.client_args(), "--chunk-ms", str(chunk_ms),
                   "--ramp-s", str(ramp), "--settle-s", str(ns.settle_s),
                   "--measure-s", str(ns.measure_s)])
    assert proc.stdout is not None
    sim_cpu0 = wall0 = 0.0
    late0 = sim.lateness()
    steal = Steal()
    result: dict[str, Any] = {}
    for line in proc.stdout:
        if line.strip() == "WINDOW":
            sim_cpu0, wall0, late0, steal = sim.cpu_s(), time.monotonic(), sim.lateness(), Steal()
        elif line.startswith("{"):
            wall = time.monotonic() - wall0
            result = json.loads(line)
            result["sim_cpu"] = (sim.cpu_s() - sim_cpu0) / wall
            result["sim_rss_mb"] = sim.rss_mb()
            result["sim_late_p99_ms"] = window_p99_ms(late0, sim.lateness())
            result["steal"] = steal.fraction()
    proc.wait()
    if not result:
        raise RuntimeError(f"trial of {n} sessions produced no result (exit {proc.returncode})")
    result["loop_stall_max_ms"] = math.nan   # the engine trial runs no instrument
    return result


def _intervals(hlog: Path) -> list[tuple[str, float, float, str]]:
    """(tag, start s, end s, encoded histogram) of every whole interval line written so far;
    the times are seconds into the run, as the log writes them (hdrh's reader adds the start
    instant to them)."""
    try:
        text = hlog.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():   # Tag=...,start s,length s,max,histogram
        parts = line.removeprefix("Tag=").split(",", 4)
        if line.startswith("Tag=") and len(parts) == 5:
            out.append((parts[0], float(parts[1]), float(parts[1]) + float(parts[2]), parts[4]))
    return out


def rtbench_cmd(sim: Simulator, sessions: int, duration_s: float, chunk_ms: int,
                 ns: argparse.Namespace, results: Path, run_id: str) -> list[str]:
    """The command a user runs against ``sim``: closed model, every watcher as they get it."""
    return [sys.executable, "-m", "rtbench", *sim.client_args(), "--sessions", str(sessions),
            "--ramp-up", f"{_ramp_s(sessions, ns):g}s",
            "--duration", f"{duration_s:g}s", "--turns", "1000000", "--chunk-ms", str(chunk_ms),
            "--progress", "plain", "--no-report", "--hlog-interval-s", f"{ns.hlog_interval_s:g}s",
            "--results", str(results), "--run-id", run_id]


def _cli_trial(sim: Simulator, n: int, chunk_ms: int, ns: argparse.Namespace
               ) -> dict[str, Any]:
    """The figure users get: the ``rtbench`` command, every watcher on as a user gets them.

    The window is whole intervals of the run's own interval log (``intervals.hlog``, written
    every ``--hlog-interval-s``, default 5 s): the client's send lateness and loop lag are the
    sum of the intervals that start after ramp-up + settle, and the CPU figures are read from
    /proc when the first and the last of those intervals appear in the log."""
    from rtbench.metrics.recorder import GENERATOR, LOOP_LAG, SEND_LATENESS, new_histogram
    from rtbench.results.intervallog import HLOG
    from rtbench.results.store import load_tables

    ramp = _ramp_s(n, ns)
    every = ns.hlog_interval_s
    first = math.ceil((ramp + ns.settle_s) / every) * every          # window start (run time)
    last = first + max(1, round(ns.measure_s / every)) * every       # window end
    # the log's ticks drift a few ms per interval behind the nominal boundaries (5.002, 10.004,
    # ...): an interval belongs to the window when it is within half an interval of it
    slack = every / 2
    results = Path(tempfile.mkdtemp(prefix="rtbench-perf-run-"))
    cmd = rtbench_cmd(sim, n, last + 1, chunk_ms, ns, results, "trial")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: _pin(CLIENT_CORE))
    hlog = results / "trial" / HLOG
    marks: dict[str, tuple[float, float, float, HdrHistogram | None, Steal]] = {}
    while proc.poll() is None and "end" not in marks:
        time.sleep(0.05)
        latest = max((end for _, _, end, _ in _intervals(hlog)), default=-math.inf)
        for name, at in (("start", first), ("end", last)):
            if name not in marks and latest >= at - slack:
                marks[name] = (time.monotonic(), _cpu_s(proc.pid), sim.cpu_s(),
                               sim.lateness(), Steal())
    rss_mb, rss_peak_mb = _rss_mb(proc.pid) if proc.poll() is None else (math.nan, math.nan)
    sim_rss = sim.rss_mb()
    _, err = proc.communicate()
    if "start" not in marks or "end" not in marks or proc.returncode not in (0, 3, 4):
        shutil.rmtree(results, ignore_errors=True)
        raise RuntimeError(f"rtbench run of {n} sessions ended early (exit {proc.returncode}): "
                           f"{err.strip()[-800:]}")
    (w0, cpu0, simcpu0, late0, steal0), (w1, cpu1, simcpu1, late1, _) = (marks["start"],
                                                                         marks["end"])
    late, lag = new_histogram(), new_histogram()
    for tag, start, end, encoded in _intervals(hlog):
        if start < first - slack or end > last + slack:
            continue
        hist = HdrHistogram.decode(encoded)
        metric, _, target = tag.partition("|")
        if metric == SEND_LATENESS and target != GENERATOR:
            late.add(hist)
        elif metric == LOOP_LAG and target == GENERATOR:
            lag.add(hist)
    if late.get_total_count() == 0:   # never a pass on no evidence
        shutil.rmtree(results, ignore_errors=True)
        raise RuntimeError(f"rtbench run of {n} sessions: no send lateness in the window "
                           f"{first:g}-{last:g} s of its interval log")
    run = results / "trial"
    manifest = json.loads((run / "manifest.json").read_text())
    turns, error_rows = load_tables(run)
    errors = Counter(f"{row.phase}/{row.code}" for row in error_rows.itertuples()
                     if row.severity != "benign")
    stalls = manifest.get("loop_stalls", {})
    shutil.rmtree(results, ignore_errors=True)
    wall = w1 - w0
    return {
        "sessions": n, "chunk_ms": chunk_ms,
        "late_p50_ms": late.get_value_at_percentile(50) / 1000,
        "late_p99_ms": late.get_value_at_percentile(99) / 1000,
        "late_max_ms": late.get_max_value() / 1000,
        "chunks": late.get_total_count(),
        "loop_lag_p99_ms": lag.get_value_at_percentile(99) / 1000,
        "bunched": manifest.get("generator", {}).get("bunched_chunks", 0),
        "client_cpu": (cpu1 - cpu0) / wall, "sim_cpu": (simcpu1 - simcpu0) / wall,
        "sim_late_p99_ms": window_p99_ms(late0, late1), "sim_rss_mb": sim_rss,
        "turns": len(turns), "turns_ok_total": int((turns["status"] == "ok").sum()) if len(turns) else 0,
        "errors": dict(errors), "errors_total": sum(errors.values()),
        "rss_mb": rss_mb, "rss_peak_mb": rss_peak_mb, "rss_base_mb": math.nan,
        "steal": steal0.fraction(),
        "loop_stall_max_ms": stalls.get("worst_ms", math.nan),
        "loop_stall_task": stalls.get("worst_task", ""),
        "loop_stall_cpu_ms": stalls.get("worst_cpu_ms", math.nan),
        "loop_stalls_preempted": f"{stalls.get('preempted', 0)}/{stalls.get('over_threshold', 0)}",
    }


def chunk_us(r: dict[str, Any]) -> float:
    """Client CPU per session-chunk (µs): a session sends 1000/chunk_ms chunks a second, and
    everything else it costs (receiving, recording) is charged to them."""
    return float(r["client_cpu"]) * 1e6 / (float(r["sessions"]) * 1000.0 / float(r["chunk_ms"]))


def _show(r: dict[str, Any]) -> None:
    verdict = "pass" if r["passed"] else "FAIL"
    errs = f" errors {r['errors']}" if r["errors_total"] else ""
    stall = ("" if math.isnan(r["loop_stall_max_ms"]) else
             f", worst loop stall {r['loop_stall_max_ms']:.1f} ms ({r['loop_stall_cpu_ms']:.1f} "
             f"ms CPU, {r['loop_stall_task']}; preempted {r['loop_stalls_preempted']} over 1 ms)")
    print(f"  {r['path']:>6} {r['scheme']:>3} {r['sessions']:5d} x {r['chunk_ms']:3d} ms: "
          f"late p50 {r['late_p50_ms']:5.2f} p99 {r['late_p99_ms']:7.2f} max "
          f"{r['late_max_ms']:7.1f} ms, client cpu {100 * r['client_cpu']:5.1f} % "
          f"({chunk_us(r):.0f} µs per session-chunk), sim cpu "
          f"{100 * r['sim_cpu']:5.1f} % late p99 {r['sim_late_p99_ms']:5.2f} ms, turns "
          f"{r['turns']:5d}, rss {r['rss_mb']:6.1f} MiB, load {r['load1']:.2f}, steal "
          f"{100 * r['steal']:.0f} %{stall} -> {verdict}{errs}", flush=True)


def attempt(n: int, chunk_ms: int, ns: argparse.Namespace, tls: bool, path: str
            ) -> dict[str, Any]:
    """Up to ``ns.attempts`` trials of N; the first that passes counts (other processes on
    the shared machine preempt ours for milliseconds at a time, which fails the p99 lateness
    test although the client itself keeps up; every attempt is printed)."""
    for _ in range(ns.attempts):
        r = trial(n, chunk_ms, ns, tls, path)
        _show(r)
        if r["passed"]:
            break
    ALL.append(r)
    return r


ALL: list[dict[str, Any]] = []  # the counted trial of every N, for the simulator's figures


def trials_of(path: str, chunk_ms: int, scheme: str) -> list[dict[str, Any]]:
    """Every counted trial of one (path, chunk size, scheme)."""
    return [r for r in ALL if (r["path"], r["chunk_ms"], r["scheme"]) == (path, chunk_ms, scheme)]


def search(chunk_ms: int, start: int, ns: argparse.Namespace, tls: bool, path: str
           ) -> tuple[int, dict[str, Any] | None]:
    """Largest passing N: step up by x1.5 from ``start``, then bisect to ~4 %."""
    good: tuple[int, dict[str, Any] | None] = (0, None)
    n, bad = start, None
    while bad is None:
        r = attempt(n, chunk_ms, ns, tls, path)
        if r["passed"]:
            good = (n, r)
            n = int(n * 1.5)
            if n > ns.max_sessions:
                return good
        else:
            bad = n
    lo = good[0]
    while bad - lo > max(10, lo // 25):
        mid = (lo + bad) // 2
        r = attempt(mid, chunk_ms, ns, tls, path)
        if r["passed"]:
            lo, good = mid, (mid, r)
        else:
            bad = mid
    return good


def soak(ns: argparse.Namespace) -> None:
    """``--soak N``: the ``rtbench`` command with N sessions for ``--soak-s`` against a simulator
    of its own; both processes' RSS sampled every ``--every-s``. Flat: the change over the
    second half (after ramp-up and warm-up) within +-5 % of where it started."""
    sim = Simulator([])
    results = Path(tempfile.mkdtemp(prefix="rtbench-perf-soak-"))
    try:
        cmd = rtbench_cmd(sim, ns.soak, ns.soak_s, ns.chunk_ms[0], ns, results, "soak")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: _pin(CLIENT_CORE))
        t0 = time.monotonic()
        samples: list[tuple[float, float, float]] = []
        while proc.poll() is None:
            time.sleep(ns.every_s)
            if proc.poll() is not None:
                break
            t = time.monotonic() - t0
            samples.append((t, _rss_mb(proc.pid)[0], sim.rss_mb()))
            print(f"  t={t:5.0f} s  client {samples[-1][1]:7.1f} MiB  simulator "
                  f"{samples[-1][2]:7.1f} MiB", flush=True)
        _, err = proc.communicate()
        manifest = json.loads((results / "soak" / "manifest.json").read_text())
    finally:
        sim.close()
        shutil.rmtree(results, ignore_errors=True)
    if proc.returncode not in (0, 3, 4) or len(samples) < 4:
        raise SystemExit(f"soak failed (exit {proc.returncode}) or too short: {err[-800:]}")
    half = samples[len(samples) // 2:]
    (ta, ca, sa), (tb, cb, sb) = half[0], half[-1]
    for name, a, b in (("client", ca, cb), ("simulator", sa, sb)):
        change = (b - a) / a * 100.0
        print(f"{name}: second half {a:.1f} -> {b:.1f} MiB ({change:+.1f} % over {tb - ta:.0f} "
              f"s): {'flat' if abs(change) <= 5.0 else 'NOT flat'}")
    stalls, gen = manifest.get("loop_stalls", {}), manifest.get("generator", {})
    print(f"client: {ns.soak} sessions, worst loop stall {stalls.get('worst_ms', math.nan):.1f} ms "
          f"({stalls.get('worst_task', '')}), send lateness p99 "
          f"{gen.get('send_lateness_p99_ms', math.nan):.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one search, short windows")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--attempts", type=int, default=2,
                    help="trials per N; N passes if one does (shared-machine noise)")
    ap.add_argument("--chunk-ms", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--paths", nargs="+", choices=["cli", "engine"], default=["cli", "engine"],
                    help="cli: the rtbench command (the figure); engine: run_sessions with a "
                         "sink that keeps nothing (the idealized second row)")
    ap.add_argument("--start", type=int, nargs="+", default=None,
                    help="first N per chunk size (default 100 at 20 ms, 400 at 100 ms)")
    ap.add_argument("--settle-s", type=float, default=5.0)
    ap.add_argument("--measure-s", type=float, default=15.0)
    ap.add_argument("--hlog-interval-s", type=float, default=5.0,
                    help="the command's --hlog-interval-s (its default: 5); the window is whole "
                         "intervals of its log")
    ap.add_argument("--connect-rate", type=float, default=100.0, help="ramp-up sessions/s")
    ap.add_argument("--max-sessions", type=int, default=4000)
    ap.add_argument("--memory", type=int, default=None, metavar="N",
                    help="measure RSS per waiting session with N sessions")
    ap.add_argument("--rss-1000", action="store_true",
                    help="run 1,000 sessions at 100 ms chunks and report the client's RSS")
    ap.add_argument("--fixed", type=int, default=None, metavar="N", help="one trial of N sessions")
    ap.add_argument("--tls", action="store_true",
                    help="measure over wss:// too (self-signed simulator), beside ws://")
    ap.add_argument("--soak", type=int, default=None, metavar="N",
                    help="soak: N sessions through the rtbench command, RSS sampled")
    ap.add_argument("--soak-s", type=float, default=600.0)
    ap.add_argument("--every-s", type=float, default=10.0)
    # child modes
    ap.add_argument("--trial", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--ca-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ramp-s", type=float, default=5.0, help=argparse.SUPPRESS)
    ap.add_argument("--turn-timeout-s", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.trial is not None or ns.memory_child:
        ns.chunk_ms = ns.chunk_ms[0]
    if ns.trial is not None:
        return run_trial(ns)
    if ns.memory_child:
        return run_memory(ns)
    if ns.quick:
        ns.repeats, ns.attempts, ns.settle_s, ns.measure_s = 1, 1, 3.0, 10.0

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cores: {os.cpu_count()}, load average {load}; client on core {CLIENT_CORE}, "
          f"simulator on core {SIM_CORE}; pass = send lateness p99 < {LATENESS_LIMIT_MS:g} ms, "
          f"client CPU <= {100 * CPU_LIMIT:g} %, no failed session "
          f"(best of {ns.attempts} trials per N)", flush=True)
    print(machine_check(), flush=True)
    if ns.soak is not None:
        return soak(ns)
    schemes = [False, True] if ns.tls else [False]   # tls?
    if ns.memory is not None:
        for tls in schemes:
            sim = Simulator(["--first-audio-ms", "600000"], tls)
            try:
                proc = _child(["--memory-child", "--memory", str(ns.memory), *sim.client_args(),
                               "--chunk-ms", str(ns.chunk_ms[-1]),
                               "--ramp-s", str(_ramp_s(ns.memory, ns))])
                out, _ = proc.communicate()
                r = json.loads(out.strip().splitlines()[-1])
                print(f"memory ({sim.url.split(':')[0]}): {r['sessions']} waiting sessions "
                      f"({r['chunk_ms']} ms chunks): client RSS {r['rss_base_mb']:.1f} -> "
                      f"{r['rss_mb']:.1f} MiB = {r['kib_per_session']:.1f} KiB per session "
                      f"({r['tasks']} trio tasks, {r['errors']} errors); simulator RSS "
                      f"{sim.rss_mb():.1f} MiB")
            finally:
                sim.close()
        return
    if ns.rss_1000 or ns.fixed is not None:
        for tls, chunk_ms, path in ((t, c, p) for t in schemes
                                    for c in (ns.chunk_ms if ns.fixed is not None else [100])
                                    for p in ns.paths):
            r = trial(ns.fixed or 1000, chunk_ms, ns, tls, path)
            _show(r)
            print(f"client RSS with {r['sessions']} live sessions: {r['rss_mb']:.1f} MiB "
                  f"(peak {r['rss_peak_mb']:.1f}); "
                  f"simulator RSS {r['sim_rss_mb']:.1f} MiB")
        return

    starts = dict(zip(ns.chunk_ms, ns.start or [100 if c <= 20 else 400 for c in ns.chunk_ms],
                      strict=False))
    # keyed (path, chunk_ms, scheme): the CLI rows first, ws and wss of one size side by side
    Key = tuple[str, int, str]
    found: dict[Key, list[tuple[int, dict[str, Any] | None]]] = {
        (p, c, "wss" if tls else "ws"): [] for p in ns.paths for c in ns.chunk_ms
        for tls in schemes}
    for rep in range(ns.repeats):
        for path, chunk_ms, scheme in found:
            print(f"search {rep + 1}/{ns.repeats}, {path}, {scheme}, {chunk_ms} ms chunks:",
                  flush=True)
            found[path, chunk_ms, scheme].append(
                search(chunk_ms, starts[chunk_ms], ns, scheme == "wss", path))
    print("\nsimulator (one process, one core):")
    for (path, chunk_ms, scheme), results in found.items():
        at_max = [r for _, r in results if r is not None]
        kept = [r for r in trials_of(path, chunk_ms, scheme) if r["passed"] and r["sim_kept_up"]]
        print(f"  {path:>6} {scheme:>3} {chunk_ms:3d} ms chunks: at the client's maximum "
              + ", ".join(
                  f"{r['sessions']} sessions: CPU {100 * r['sim_cpu']:.0f} %, own lateness p99 "
                  f"{r['sim_late_p99_ms']:.2f} ms ({'keeps up' if r['sim_kept_up'] else 'FALLS BEHIND'})"
                  for r in at_max))
        best = max(kept, key=lambda r: r["sessions"], default=None)
        print("       largest client-passed trial it kept up with: " + (
            f"{best['sessions']} sessions (CPU {100 * best['sim_cpu']:.0f} %, lateness p99 "
            f"{best['sim_late_p99_ms']:.2f} ms)" if best else "none"))
    print("\nclient RSS per live session (slope of RSS over sessions across the trials):")
    for (path, chunk_ms, scheme) in found:
        pts = [(r["sessions"], r["rss_mb"]) for r in trials_of(path, chunk_ms, scheme)
               if not math.isnan(r["rss_mb"])]
        if len({n for n, _ in pts}) >= 2:
            slope = statistics.linear_regression([n for n, _ in pts], [m for _, m in pts]).slope
            print(f"  {path:>6} {scheme:>3} {chunk_ms:3d} ms chunks: {slope * 1024:.0f} KiB "
                  f"({len(pts)} trials, {min(n for n, _ in pts)}-{max(n for n, _ in pts)} sessions)")
    print("\nclient CPU per session-chunk at the largest trial (what a core could hold if only its "
          "CPU limited it):")
    for (path, chunk_ms, scheme) in found:
        rows = [r for r in trials_of(path, chunk_ms, scheme) if not r["errors_total"]]
        if rows:
            big = max(rows, key=lambda r: (r["sessions"], -chunk_us(r)))
            print(f"  {path:>6} {scheme:>3} {chunk_ms:3d} ms chunks: {chunk_us(big):.0f} µs at "
                  f"{big['sessions']} sessions -> {CPU_LIMIT * 1e6 / chunk_us(big) / (1000 / chunk_ms):.0f}"
                  f" sessions at {100 * CPU_LIMIT:g} % CPU")
    print("\nsessions per client core (median of repeats):")
    ws_median: dict[tuple[str, int], float] = {}   # (path, chunk_ms): wss is shown against it
    for (path, chunk_ms, scheme), results in found.items():
        ns_ = [n for n, _ in results]
        rows = [r for _, r in results if r is not None]
        label = f"  {path:>6} {scheme:>3} {chunk_ms:3d} ms chunks: "
        if not rows:
            print(f"{label}no passing N (runs: {ns_})")
            continue
        median = statistics.median(ns_)
        if scheme == "ws":
            ws_median[path, chunk_ms] = median
        ratio = (f", {100 * median / ws_median[path, chunk_ms]:.0f} % of ws"
                 if scheme == "wss" and ws_median.get((path, chunk_ms)) else "")
        print(f"{label}{median:.0f} sessions (runs: {ns_}){ratio}; client CPU "
              f"{100 * statistics.median(r['client_cpu'] for r in rows):.0f} %, send lateness p99 "
              f"{statistics.median(r['late_p99_ms'] for r in rows):.2f} ms, simulator CPU "
              f"{100 * statistics.median(r['sim_cpu'] for r in rows):.0f} %, steal "
              f"{100 * statistics.median(r['steal'] for r in rows):.0f} %")

if __name__ == "__main__":
    main()
