"""How many concurrent real-time sessions one simulator process sustains (and, for
comparison, how many the rtbench client drives per core).

    python bench/perf/sim_capacity.py [--ladder 25,50,100,...] [--seconds 10]

Simulator: ``rtbench serve`` runs as a child process on loopback with a constant first-audio
latency. This script drives N sessions with a lean load driver (one pacer task sends every
session's next pre-encoded 20 ms chunk, speech then silence, staggered in phase and over ten
2 ms slots of each tick; one reader per session
only stamps the first audio delta after each end of speech). For each N it reports the
simulator's CPU (from /proc, share of one core), its own send lateness (p99 of how late its
outputs left against their schedule, from its stats file) and the first-audio error seen by the
driver. The figure is the largest N where the simulator keeps its schedule: CPU < 90 % of a
core and send-lateness p99 < 10 ms (trio timers alone show ~1-4 ms on a busy machine).

Client: ``rtbench run --url`` against a fresh simulator for each N; its CPU (user+sys of the
child, less the same for N=1, i.e. start-up) gives sessions per core, and the TTFA error
(measured - injected) and pacer lateness say whether it kept up.

Not a test: timings depend on the machine. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson
import trio
import trio_websocket

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from rtbench.protocol import Dialect, SessionConfig, TurnDetection, session_to_wire  # noqa: E402
from rtbench.workload import load_utterance, plan_chunks, silence_frame  # noqa: E402

FIRST_AUDIO_MS = 700.0
CHUNK_MS = 20
SILENCE_AFTER_MS = 2500      # long enough for the response (700 ms + 1.5 s at 2x) to finish
CPU_LIMIT = 0.90
LATENESS_LIMIT_MS = 10.0
TICKS = os.sysconf("SC_CLK_TCK")
SUBTICKS = 10


@contextmanager
def simulator(stats_file: Path) -> Iterator[tuple[str, int]]:
    cmd = [sys.executable, "-m", "rtbench", "serve", "--port", "0", "--first-audio-ms",
           str(FIRST_AUDIO_MS), "--first-audio-p99-ms", str(FIRST_AUDIO_MS), "--stats-file",
           str(stats_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield "ws://" + line.removeprefix("listening on "), proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class Driver:
    """N sessions, one pacer for all of them; stamps first audio after each end of speech."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url + "/v1/realtime?model=gpt-realtime"
        self.n = n
        plan = plan_chunks(load_utterance(REPO / "workloads/audio/en_weather.wav"), CHUNK_MS)
        silence = silence_frame(CHUNK_MS)
        self.cycle = list(plan.frames) + [silence] * (SILENCE_AFTER_MS // CHUNK_MS)
        self.eos_index = plan.eos_chunk
        self.t_eos: list[float | None] = [None] * n
        self.errors_ms: list[float] = []
        self.measuring = False
        self.late_ms: list[float] = []
        update = {"type": "session.update", "session": session_to_wire(
            SessionConfig(turn_detection=TurnDetection(silence_duration_ms=200)), Dialect.GA)}
        self.update = orjson.dumps(update).decode()

    async def _reader(self, i: int, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            msg = await ws.get_message()
            t = trio.current_time()
            t_eos = self.t_eos[i]
            if t_eos is not None and '"response.output_audio.delta"' in msg[:50]:
                self.t_eos[i] = None
                if self.measuring:
                    self.errors_ms.append((t - t_eos) * 1000.0 - FIRST_AUDIO_MS)

    async def _session(self, i: int, ready: list[trio_websocket.WebSocketConnection],
                       nursery: trio.Nursery) -> None:
        ws = await trio_websocket.connect_websocket_url(nursery, self.url)
        await ws.get_message()  # session.created
        await ws.send_message(self.update)
        await ws.get_message()  # session.updated
        ready[i] = ws
        nursery.start_soon(self._reader, i, ws)

    async def run(self, warmup_s: float, measure_s: float, on_window: trio.Event,
                  window_done: trio.Event) -> None:
        async with trio.open_nursery() as nursery:
            ready: list[trio_websocket.WebSocketConnection] = [None] * self.n  # type: ignore[list-item]
            async with trio.open_nursery() as connecting:
                for i in range(self.n):
                    connecting.start_soon(self._session, i, ready, nursery)
            offsets = [i * len(self.cycle) // self.n for i in range(self.n)]
            t0 = trio.current_time()
            k = 0
            sub_s = CHUNK_MS / 1000.0 / SUBTICKS
            while True:
                # sessions are spread over SUBTICKS phases of the 20 ms tick, like independent
                # microphones, instead of arriving at the simulator in one burst
                for g in range(SUBTICKS):
                    deadline = t0 + (k * SUBTICKS + g + 1) * sub_s
                    await trio.sleep_until(deadline)
                    late = (trio.current_time() - deadline) * 1000.0
                    if self.measuring:
                        self.late_ms.append(late)
                    for i in range(g, self.n, SUBTICKS):
                        idx = (k + offsets[i]) % len(self.cycle)
                        await ready[i].send_message(self.cycle[idx])
                        if idx == self.eos_index:
                            self.t_eos[i] = trio.current_time()
                k += 1
                elapsed = trio.current_time() - t0
                if not self.measuring and not on_window.is_set() and elapsed > warmup_s:
                    self.measuring = True
                    on_window.set()
                elif self.measuring and elapsed > warmup_s + measure_s:
                    self.measuring = False
                    window_done.set()
                    nursery.cancel_scope.cancel()
                    return


def measure_simulator(n: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "stats.json"
        with simulator(stats_file) as (url, pid):
            driver = Driver(url, n)
            cpu: dict[str, float] = {}

            async def main() -> None:
                start, done = trio.Event(), trio.Event()

                async def sample() -> None:
                    await start.wait()
                    cpu["t0"], cpu["c0"] = time.monotonic(), cpu_seconds(pid)
                    await done.wait()
                    cpu["t1"], cpu["c1"] = time.monotonic(), cpu_seconds(pid)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sample)
                    await driver.run(4.0, seconds, start, done)

            trio.run(main)
            time.sleep(1.2)  # one more stats write
            stats = json.loads(stats_file.read_text())
    errors = np.abs(np.array(driver.errors_ms or [np.nan]))
    return {
        "sessions": n,
        "sim_cpu": (cpu["c1"] - cpu["c0"]) / (cpu["t1"] - cpu["t0"]),
        "sim_late_p99_ms": stats["send_lateness_ms"].get("p99", float("nan")),
        "first_audio_err_p99_ms": float(np.percentile(errors, 99)),
        "responses": len(driver.errors_ms),
        "driver_late_p99_ms": float(np.percentile(driver.late_ms, 99)),
    }


def measure_client(n: int, turns: int) -> dict[str, float]:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp, simulator(Path(tmp) / "stats.json") as (url, _):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "rtbench", "--url", url + "/v1/realtime?model=gpt-realtime",
             "--sessions", str(n), "--turns", str(turns), "--results", tmp, "--run-id", "r"],
            cwd=REPO, capture_output=True, text=True, timeout=600)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in (0, 3):
            raise RuntimeError(proc.stderr)
        turns_df = pd.read_parquet(Path(tmp) / "r" / "turns.parquet")
    ok = turns_df[turns_df["status"] == "ok"]
    err = (ok["ttfa_ms"] - FIRST_AUDIO_MS).abs()
    return {
        "sessions": n,
        "client_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "wall_s": wall,
        "turns_ok": len(ok),
        "turns": len(turns_df),
        "ttfa_err_p99_ms": float(err.quantile(0.99)) if len(ok) else float("nan"),
        "pacer_late_p99_ms": float(ok["send_lateness_max_ms"].quantile(0.99)) if len(ok)
        else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ladder", default="25,50,100,150,200,300,400",
                    help="simulator: session counts to try, ascending")
    ap.add_argument("--client-ladder", default="1,25,50,100,150",
                    help="client: session counts for rtbench run (the first is the baseline)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window per step")
    ap.add_argument("--turns", type=int, default=3, help="turns per session for the client")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} cores; chunk {CHUNK_MS} ms; first audio "
          f"{FIRST_AUDIO_MS:g} ms constant; response 1.5 s at 2x real time", flush=True)
    print("\nsimulator (one process), lean driver:")
    print(f"{'sessions':>8} {'sim cpu':>8} {'sim late p99':>13} {'1st-audio err p99':>18} "
          f"{'responses':>9} {'driver late p99':>16}")
    best = 0
    for n in (int(x) for x in args.ladder.split(",")):
        r = measure_simulator(n, args.seconds)
        keeps = r["sim_cpu"] < CPU_LIMIT and r["sim_late_p99_ms"] < LATENESS_LIMIT_MS
        print(f"{n:>8} {r['sim_cpu']:>7.0%} {r['sim_late_p99_ms']:>10.1f} ms "
              f"{r['first_audio_err_p99_ms']:>15.1f} ms {r['responses']:>9} "
              f"{r['driver_late_p99_ms']:>13.1f} ms{'' if keeps else '   <- over'}", flush=True)
        if r["driver_late_p99_ms"] > 20:
            print("         (the driver itself is late: the figure below is a lower bound)")
        if not keeps:
            break
        best = n
    print(f"\nsimulator capacity: {best} concurrent real-time sessions per process "
          f"(CPU < {CPU_LIMIT:.0%} of a core, send lateness p99 < {LATENESS_LIMIT_MS:g} ms)\n")

    print("rtbench client (one process), for comparison:")
    print(f"{'sessions':>8} {'cpu s':>7} {'wall s':>7} {'turns ok':>9} {'ttfa err p99':>13} "
          f"{'pacer late p99':>15}")
    base_cpu = None
    kept: tuple[int, float] | None = None
    for n in (int(x) for x in args.client_ladder.split(",")):
        r = measure_client(n, args.turns)
        ok = r["ttfa_err_p99_ms"] < LATENESS_LIMIT_MS and r["pacer_late_p99_ms"] < LATENESS_LIMIT_MS
        print(f"{n:>8} {r['client_cpu_s']:>7.1f} {r['wall_s']:>7.1f} "
              f"{r['turns_ok']:>4}/{r['turns']:<4} {r['ttfa_err_p99_ms']:>10.1f} ms "
              f"{r['pacer_late_p99_ms']:>12.1f} ms{'' if ok else '   <- over'}", flush=True)
        if base_cpu is None:
            base_cpu = r["client_cpu_s"]
            continue
        busy = (r["client_cpu_s"] - base_cpu) / r["wall_s"]
        if not ok:
            break
        kept = (n, n / busy if busy > 0 else float("inf"))
    if kept is None:
        print("\nclient: did not keep TTFA error and pacer lateness p99 under "
              f"{LATENESS_LIMIT_MS:g} ms at any N above the baseline")
    else:
        print(f"\nclient: kept TTFA error and pacer lateness p99 < {LATENESS_LIMIT_MS:g} ms up to "
              f"{kept[0]} sessions, using CPU for ~{kept[1]:.0f} sessions per core there. Beyond "
              "the simulator's capacity its lag (and TCP back-pressure on the pacer) shows up "
              "here too, so the client ladder is bounded by the simulator above.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
