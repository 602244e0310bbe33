"""Entry point of one local worker process: ``python -m rtbench.scale.worker_main OUT_ROOT``.

Protocol (see workers.py): read the pickled spec from stdin, say ``ready``, read the start
instant, run the shard, report progress every second and the final report at the end. A
``stop`` line or the end of stdin (the parent died) stops the shard, which still finalizes.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from .shardrun import ShardRun, ShardSpec

PROGRESS_S = 1.0
_out_lock = threading.Lock()


def _emit(msg: dict[str, Any]) -> None:
    with _out_lock:
        sys.stdout.buffer.write(orjson.dumps(msg) + b"\n")
        sys.stdout.buffer.flush()


def _watch_parent(run: ShardRun) -> None:
    for line in sys.stdin.buffer:
        words = line.decode(errors="replace").split()
        if words and words[0] == "stop":
            run.stop(words[1] if len(words) > 1 else "stop")
            return
    run.stop("parent_gone")


def _report_progress(run: ShardRun, done: threading.Event) -> None:
    while not done.wait(PROGRESS_S):
        _emit({"progress": list(run.progress())})


def main(argv: list[str]) -> int:
    out_root = Path(argv[0])
    spec: ShardSpec = pickle.load(sys.stdin.buffer)
    _emit({"ready": True})
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return 1  # the parent went away before the start
    run = ShardRun(spec, out_root)
    done = threading.Event()
    threading.Thread(target=_watch_parent, args=(run,), daemon=True).start()
    threading.Thread(target=_report_progress, args=(run, done), daemon=True).start()
    try:
        report = run.run(float(line), signals=True)
    finally:
        done.set()
    _emit({"report": report.as_dict()})
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # The parent-watching thread is blocked reading stdin; a normal interpreter shutdown would
    # wait on that stream's lock (a fatal error). Everything is written and closed by now.
    os._exit(code)
