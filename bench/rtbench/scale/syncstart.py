"""A synchronized start: one wall-clock instant, reached by each process on its own clock.

Monotonic clocks are per process (and per machine), so the parent picks a *wall-clock* instant
slightly in the future; every shard converts it to its own trio clock once and sleeps until
then. The skew each shard reports is measured on its own wall clock after waking, so it shows
wake-up and timer lateness; the offset between machines' wall clocks (NTP) is not visible from
inside and is not included.
"""

from __future__ import annotations

import time

import trio


def pick_start(lead_s: float) -> float:
    """The start instant (Unix seconds): ``lead_s`` from now."""
    return time.time() + lead_s


async def wait_for(start_wall: float) -> float:
    """Sleep until ``start_wall`` on this process's clock; return the start skew in ms
    (positive: started late; a shard that was ready only after the instant starts at once)."""
    await trio.sleep_until(trio.current_time() + (start_wall - time.time()))
    return (time.time() - start_wall) * 1000.0
