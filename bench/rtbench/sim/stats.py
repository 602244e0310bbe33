"""What the simulator did, counted: sessions, refusals, injected faults, its own send lateness.

Tests compare these counts with what rtbench recorded; ``sessions_per_core.py`` reads the lateness
to see whether the simulator still keeps its schedule. :meth:`SimStats.write` replaces the file
atomically so a reader never sees half a document.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from ..metrics.recorder import value_at_percentile
from ..process.gcpolicy import GcPauses

_LATENESS_MAX_US = 60_000_000


@dataclass
class SimStats:
    counters: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    #: session id (or ``connection-N`` for a refused handshake) -> fault kind -> count
    by_session: dict[str, Counter[str]] = field(default_factory=dict)
    active: int = 0
    active_max: int = 0
    lateness: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, _LATENESS_MAX_US, 3))
    plan: list[dict[str, Any]] = field(default_factory=list)  # the fault plan, for the record
    gc_pauses: GcPauses = field(default_factory=GcPauses)  # scheduled collection (gcpolicy)

    def count(self, key: str) -> None:
        self.counters[key] += 1

    def inject(self, kind: str, session: str) -> None:
        self.injected[kind] += 1
        self.by_session.setdefault(session, Counter())[kind] += 1

    def session_started(self) -> None:
        self.active += 1
        self.active_max = max(self.active_max, self.active)

    def session_ended(self) -> None:
        self.active -= 1

    def record_lateness(self, seconds: float) -> None:
        """How late an output went out against its scheduled time (the simulator's own lag)."""
        self.lateness.record_value(min(_LATENESS_MAX_US, max(1, round(seconds * 1e6))))

    def as_dict(self) -> dict[str, Any]:
        h = self.lateness
        lateness = {"count": h.get_total_count()}
        if h.get_total_count():
            lateness.update({f"p{p:g}": value_at_percentile(h, p) / 1000.0
                             for p in (50, 90, 99, 99.9)})
            lateness["max"] = h.get_max_value() / 1000.0
        return {
            **dict(sorted(self.counters.items())),
            "active": self.active,
            "active_max": self.active_max,
            "injected": dict(sorted(self.injected.items())),
            "injected_by_session": {k: dict(v) for k, v in self.by_session.items()},
            "send_lateness_ms": lateness,
            # the whole histogram (µs, HdrHistogram encode()): two snapshots give a window's
            "send_lateness_hdr": h.encode().decode(),
            "gc_pauses": self.gc_pauses.as_dict(),
            "fault_plan": self.plan,
        }

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
