"""Live, read-only view of a running benchmark: counters the sessions bump.

The progress display and abort-on-fail read it; nothing in the measurement path reads it back.
Sessions call ``session_*``; turn and error rows reach it through :class:`ProgressSink`, which
wraps the results store, so the session code only reports its connection state.
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np
import trio

from ..client.session import Sink
from ..metrics.recorder import Recorder
from ..metrics.records import ErrorRecord, SessionRecord, TurnRecord
from ..metrics.tallies import Tally

TTFA_WINDOW_S = 30.0


class RunProgress:
    def __init__(self, window_s: float = TTFA_WINDOW_S) -> None:
        self.connecting = 0
        self.active = 0
        self.finished = 0
        self.turns_done = 0
        self.turns_ok = 0
        self.errors_by_code: Counter[str] = Counter()
        self.tally = Tally()
        self.window_s = window_s
        self._ttfa: deque[tuple[float, float]] = deque()

    # -- sessions --------------------------------------------------------------------------

    def session_connecting(self) -> None:
        self.connecting += 1

    def session_connected(self) -> None:
        self.connecting -= 1
        self.active += 1

    def session_finished(self, target: str, connected: bool, turns_attempted: int,
                         turns_planned: int) -> None:
        if connected:
            self.active -= 1
        else:
            self.connecting -= 1
        self.finished += 1
        self.tally.session_finished(target, turns_attempted, turns_planned)

    # -- rows ------------------------------------------------------------------------------

    def on_turn(self, record: TurnRecord, now: float) -> None:
        self.turns_done += 1
        self.tally.add_turn(record.target, record.status, record.premature)
        if record.status == "ok":
            self.turns_ok += 1
            if record.ttfa_ms is not None and not record.premature:
                self._ttfa.append((now, record.ttfa_ms))

    def on_error(self, record: ErrorRecord) -> None:
        self.errors_by_code[record.code or record.kind] += 1
        self.tally.add_error(record.target, record.session_idx, record.phase, record.kind,
                             record.code)

    def rolling_ttfa(self, now: float) -> tuple[float, float, int]:
        """(p50, p95, n) of TTFA over the last ``window_s`` seconds (NaN when empty)."""
        while self._ttfa and self._ttfa[0][0] < now - self.window_s:
            self._ttfa.popleft()
        if not self._ttfa:
            return float("nan"), float("nan"), 0
        values = np.fromiter((v for _, v in self._ttfa), dtype=np.float64)
        p50, p95 = np.percentile(values, [50, 95])
        return float(p50), float(p95), len(values)


class ProgressSink:
    """A :class:`~rtbench.client.session.Sink` that forwards to the store and counts for the progress."""

    def __init__(self, inner: Sink, progress: RunProgress) -> None:
        self.inner = inner
        self.progress = progress
        self.recorder: Recorder = inner.recorder

    def turn(self, record: TurnRecord) -> None:
        self.inner.turn(record)
        self.progress.on_turn(record, trio.current_time())

    def error(self, record: ErrorRecord) -> None:
        self.inner.error(record)
        self.progress.on_error(record)

    def session(self, record: SessionRecord) -> None:
        self.inner.session(record)
