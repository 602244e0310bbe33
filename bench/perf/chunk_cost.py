"""What one session-chunk costs the client, in microseconds, and where it goes.

    pip install py-spy        # the sampling profiler this script runs (not a dependency)
    python bench/perf/chunk_cost.py [--sessions 150] [--chunk-ms 20] [--seconds 20]

Runs the command users run (``rtbench --url ... --sessions N --duration ...``, every watcher on)
against ``rtbench serve`` pinned to the other core, under ``py-spy record`` (raw samples, 250 Hz,
subprocesses off). The client's CPU time (user + system, from /proc) divided by the chunks it
sent (the run's ``send_lateness_ms`` count) is the cost of one session-chunk: the send, and
the share of everything received and recorded in that session's 20 ms.

* syscall: the process's *kernel* CPU time (``manifest.json`` → ``loop_stalls``, from
  ``os.times()``): the system calls and the network stack under them. Not from the samples:
  py-spy stops the process to read its stacks, and a thread inside a system call is caught
  there far more often than the time it spends (a 0.8 µs ``clock_gettime`` per task step read
  as 16 % of the samples).

The *user* CPU time is split by the samples, by the innermost frame that names a category
(samples inside a system call's Python wrapper are left out of this split):

* framing: rtbench's frame code, wsproto;
* JSON/base64: decoding events (orjson), base64 of received audio;
* audio detection: the VAD over received audio (``protocol/audio.py``), which is how a turn
  knows its first *audible* byte;
* timers/scheduling: the pacer, trio's run loop, clocks, cancel scopes;
* bookkeeping: everything else of rtbench (session and turn state, histograms, journal,
  progress, the interval log).

Start-up (imports, parsing) is left out: only samples under the trio run loop count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

# the same simulator, pinning and command line as the sessions-per-core trials
from sessions_per_core import CLIENT_CORE, Simulator, rtbench_cmd

# (category, substrings of a frame "function (file:line)"), checked innermost frame first
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("syscall", ("WsClient._write (rtbench/ws/client.py",
                 "WsClient._read_ready (rtbench/ws/client.py", "_nonblocking_helper",
                 "get_events", "_io_epoll", "socket.py", "os.read", "os.write", "ssl.py")),
    ("JSON/base64", ("codec.py", "orjson", "base64", "json/")),
    ("audio detection", ("protocol/audio.py",)),
    ("framing", ("ws/frame.py", "wsproto/", "ws/client.py", "ws/readhub.py")),
    ("timers/scheduling", ("pacer.py", "trio/_core/_run.py", "_generated_run.py", "trio/_timeouts",
                           "_ki.py", "heapq", "_thread_cache.py", "trio/_core/_instrumentation",
                           "loopstalls.py")),
]


def categorize(frames: list[str]) -> str:
    """The category of the innermost frame that names one; the first other rtbench frame met on
    the way out is bookkeeping (a third-party call it made is its cost, not its caller's)."""
    for frame in reversed(frames):          # innermost first
        for category, needles in RULES:
            if any(n in frame for n in needles):
                return category
        if "rtbench/" in frame:
            return "bookkeeping"
    return "bookkeeping"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=150)
    ap.add_argument("--chunk-ms", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--top", type=int, default=3, help="innermost functions named per category")
    ns = ap.parse_args()
    if shutil.which("py-spy") is None:
        print("chunk_cost.py: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="rtbench-cost-"))
    sim = Simulator([])
    try:
        raw = folder / "samples.txt"
        client = rtbench_cmd(sim, ns.sessions, ns.seconds, ns.chunk_ms,
                              argparse.Namespace(connect_rate=100.0, hlog_interval_s=5.0),
                              folder, "run")
        spy = subprocess.Popen(["taskset", "-c", str(CLIENT_CORE), "py-spy", "record", "-r",
                                "250", "-f", "raw", "-o", str(raw), "--", *client],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, err = spy.communicate()
        if spy.returncode != 0 or not raw.exists():
            print(f"chunk_cost.py: the profiled run failed: {err[-800:]}", file=sys.stderr)
            return 1
        manifest = json.loads((folder / "run" / "manifest.json").read_text())
        from rtbench.results.store import load_recorder

        recorder = load_recorder(folder / "run")
    finally:
        sim.close()
    chunks = sum(series.histogram.get_total_count() for (target, metric), series
                 in recorder.items() if metric == "send_lateness_ms" and target != "_generator")
    by: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("trio/_core/_run.py" in f for f in frames):
            continue                      # start-up and shut-down: imports, tables, summary
        category = categorize(frames)
        by[category] += int(count)
        leaves.setdefault(category, Counter())[frames[-1].split(" (")[0]] += int(count)
    total = sum(by.values())
    stalls = manifest.get("loop_stalls", {})
    times, user, system = stalls.get("cpu_s"), stalls.get("cpu_user_s"), stalls.get("cpu_system_s")
    print(f"{ns.sessions} sessions x {ns.chunk_ms} ms chunks, {ns.seconds:g} s: {chunks} chunks "
          f"sent, {total} samples in the run loop")
    if times is None or user is None or system is None or not chunks:
        print("no CPU time or no chunks in the run's manifest/histograms", file=sys.stderr)
        return 1
    per_chunk_us = times * 1e6 / chunks
    user_us, system_us = user * 1e6 / chunks, system * 1e6 / chunks
    print(f"client CPU in the run loop {times:.2f} s (user {user:.2f}, kernel {system:.2f}) = "
          f"{per_chunk_us:.1f} µs per session-chunk")
    print(f"  {'syscall (kernel)':18s} {100 * system_us / per_chunk_us:5.1f} %  {system_us:6.1f} µs")
    user_samples = total - by.pop("syscall", 0)
    for category, n in by.most_common():
        share = n / max(1, user_samples)
        top = ", ".join(f"{name} {100 * k / n:.0f} %"
                        for name, k in leaves[category].most_common(ns.top))
        print(f"  {category:18s} {100 * share * user_us / per_chunk_us:5.1f} %  "
              f"{share * user_us:6.1f} µs   (of it: {top})")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
