"""The floor under any client on this machine: what one chunk's ``write(2)`` costs the kernel.

    python bench/perf/write_floor.py [--sockets 200] [--writes 200000] [--chunk-ms 20]

Every session-chunk is at least one system call that puts a masked ``input_audio_buffer.append``
frame (the real one rtbench sends) on a loopback TCP socket; on loopback the sender's call also
runs the receiving side's TCP processing. This script measures that alone: N sockets to a
drain process pinned to the other core (it reads as fast as it can through epoll), and this
process, pinned to the client's core, writing the frame to the sockets in turn with
``os.write`` — nothing else: no event loop, no timers, no parsing. The CPU time per write
(``os.times()``, kernel and user apart) is the least a session-chunk can cost a client written
in any language here, and ``0.75 s / (cost × chunks per second)`` the most sessions one core
could hold at 75 % if a chunk cost nothing else.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
from multiprocessing import Process, Queue
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # rtbench from a fresh clone

# the same pinning and pass criterion as the sessions-per-core trials
from sessions_per_core import CLIENT_CORE, CPU_LIMIT, _pin
from sessions_per_core import SIM_CORE as DRAIN_CORE

from rtbench.client.workload import silence_frame
from rtbench.ws.frame import MaskKeys, OutFrame


def _drain(sockets: int, ports: Queue) -> None:  # type: ignore[type-arg]
    """Accept ``sockets`` connections and read everything they send until they close."""
    _pin(DRAIN_CORE)
    listener = socket.create_server(("127.0.0.1", 0), backlog=sockets)
    ports.put(listener.getsockname()[1])
    epoll = select.epoll()
    open_fds: dict[int, socket.socket] = {}
    for _ in range(sockets):
        conn, _ = listener.accept()
        conn.setblocking(False)
        open_fds[conn.fileno()] = conn
        epoll.register(conn.fileno(), select.EPOLLIN)
    while open_fds:
        for fd, _ in epoll.poll():
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                epoll.unregister(fd)
                open_fds.pop(fd).close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sockets", type=int, default=200)
    ap.add_argument("--writes", type=int, default=200_000)
    ap.add_argument("--chunk-ms", type=int, default=20)
    ns = ap.parse_args()
    ports: Queue = Queue()  # type: ignore[type-arg]
    drain = Process(target=_drain, args=(ns.sockets, ports), daemon=True)
    drain.start()
    port = ports.get(timeout=10)
    _pin(CLIENT_CORE)
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(ns.sockets)]
    fds = [c.fileno() for c in conns]
    frame = OutFrame(silence_frame(ns.chunk_ms))
    keys = MaskKeys()
    payloads = [frame.masked(keys.next()) for _ in range(64)]   # masked once: not measured
    before = os.times()
    for i in range(ns.writes):
        os.write(fds[i % len(fds)], payloads[i & 63])
    after = os.times()
    for c in conns:
        c.close()
    drain.join(timeout=30)
    kernel_us = (after.system - before.system) * 1e6 / ns.writes
    user_us = (after.user - before.user) * 1e6 / ns.writes
    wall_us = (after.elapsed - before.elapsed) * 1e6 / ns.writes
    per_s = 1000.0 / ns.chunk_ms
    total = kernel_us + user_us
    print(f"{ns.writes} writes of one {frame.size + 6}-byte masked append frame over "
          f"{ns.sockets} loopback sockets (drain on core {DRAIN_CORE}):")
    print(f"  per write: kernel {kernel_us:.2f} µs, user {user_us:.2f} µs "
          f"(wall {wall_us:.2f} µs)")
    print(f"  a client that only wrote would hold at most {CPU_LIMIT / (total * 1e-6 * per_s):,.0f}"
          f" sessions per core at {ns.chunk_ms} ms chunks ({CPU_LIMIT:.0%} of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
