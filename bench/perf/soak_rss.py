"""Does memory stay flat in a soak? RSS of the client and of its embedded simulator, sampled.

    python bench/perf/soak_rss.py [--sessions 200] [--duration 600] [--every 10]
                                  [--hlog-interval-s 1]

Runs the command users run (``rtbench --sessions N --duration D``, every watcher on as a user
gets them, the embedded simulator in its own process), samples both processes' resident set
size from /proc every ``--every`` seconds, and prints the samples and, over the second half of
the run (after ramp-up and warm-up), each process's change in RSS and its slope. "Flat" is
the issue's criterion: the change over the second half within ±5 % of its start.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = 4096


def rss_kib(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE // 1024
    except (OSError, IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds")
    ap.add_argument("--every", type=float, default=10.0, help="sampling period, seconds")
    ap.add_argument("--hlog-interval-s", default="5")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtbench-soak-") as results:
        cmd = [sys.executable, "-m", "rtbench", "--sessions", str(ns.sessions), "--duration",
               f"{ns.duration:g}s", "--turns", "1000000", "--progress", "off", "--no-report",
               "--hlog-interval-s", ns.hlog_interval_s, "--results", results]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        samples: list[tuple[float, int, int]] = []
        while proc.poll() is None:
            time.sleep(ns.every)
            sim = children(proc.pid)
            client_kib = rss_kib(proc.pid)
            sim_kib = rss_kib(sim[0]) if sim else None
            if client_kib is not None and sim_kib is not None:
                t = time.monotonic() - t0
                samples.append((t, client_kib, sim_kib))
                print(f"t={t:6.0f} s  client {client_kib / 1024:7.1f} MiB  "
                      f"simulator {sim_kib / 1024:7.1f} MiB", flush=True)
        _, err = proc.communicate()
    if proc.returncode not in (0, 5) or len(samples) < 4:
        print(f"run failed (exit {proc.returncode}) or too short:\n{err[-2000:]}", file=sys.stderr)
        return 1
    half = samples[len(samples) // 2:]
    (ta, ca, sa), (tb, cb, sb) = half[0], half[-1]
    for name, a, b in (("client", ca, cb), ("simulator", sa, sb)):
        change = (b - a) / a * 100.0
        slope = (b - a) / 1024 / (tb - ta)
        verdict = "flat" if abs(change) <= 5.0 else "NOT flat"
        print(f"{name}: second half {a / 1024:.1f} -> {b / 1024:.1f} MiB ({change:+.1f} %, "
              f"{slope * 1000:+.1f} KiB/s over {tb - ta:.0f} s): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
