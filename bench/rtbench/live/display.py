"""Live progress on the terminal: a rich panel on a TTY, plain lines every few seconds otherwise
(CI logs keep a readable, greppable trace). Written to stderr so stdout stays the result table.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

import trio

from ..metrics.recorder import GENERATOR, LOOP_LAG, Recorder, value_at_percentile
from ..results.store import RunStore
from .progress import RunProgress
from .watcher import Watcher

PLAIN_EVERY_S = 5.0
RICH_EVERY_S = 1.0


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.0f} ms"


def snapshot(progress: RunProgress, recorder: Recorder, now: float, elapsed_s: float,
             sessions: int) -> dict[str, str]:
    """The numbers shown, as labelled strings (shared by both displays)."""
    p50, p95, n = progress.rolling_ttfa(now)
    lag = recorder.series(GENERATOR, LOOP_LAG).histogram
    lag_text = "-" if lag.get_total_count() == 0 else (
        f"p99 {value_at_percentile(lag, 99) / 1000:.1f} ms, max {lag.get_max_value() / 1000:.1f} ms")
    errors = sum(progress.errors_by_code.values())
    top = ", ".join(f"{k} {v}" for k, v in progress.errors_by_code.most_common(4))
    return {
        "elapsed": f"{elapsed_s:.0f} s",
        "sessions": (f"{progress.active} active, {progress.connecting} connecting, "
                     f"{progress.finished}/{sessions} done"),
        "turns": f"{progress.turns_done} done, {progress.turns_ok} ok",
        "errors": f"{errors}" + (f" ({top})" if top else ""),
        f"TTFA last {progress.window_s:.0f} s": f"p50 {_ms(p50)}, p95 {_ms(p95)} (n={n})",
        "generator lag": lag_text,
    }


def plain_line(values: dict[str, str]) -> str:
    return "progress " + " | ".join(f"{k}: {v}" for k, v in values.items())


def progress_watcher(mode: str = "auto", stream: TextIO | None = None,
                     every_s: float | None = None) -> Watcher:
    """``mode``: ``auto`` (rich on a TTY, else plain), ``rich``, ``plain``."""
    out = stream or sys.stderr
    use_rich = mode == "rich" or (mode == "auto" and out.isatty())
    period = every_s or (RICH_EVERY_S if use_rich else PLAIN_EVERY_S)

    async def watch(store: RunStore, progress: RunProgress, scope: trio.CancelScope) -> None:
        sessions = int(store.manifest.get("sessions", 0))
        t0 = trio.current_time()

        def values() -> dict[str, str]:
            now = trio.current_time()
            return snapshot(progress, store.recorder, now, now - t0, sessions)

        if not use_rich:
            try:
                while True:
                    await trio.sleep(period)
                    print(plain_line(values()), file=out, flush=True)
            finally:
                print(plain_line(values()), file=out, flush=True)
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        def table() -> Table:
            t = Table(title="rtbench", show_header=False, box=None)
            for k, v in values().items():
                t.add_row(k, v)
            return t

        with Live(table(), console=Console(file=out), auto_refresh=False) as live:
            try:
                while True:
                    await trio.sleep(period)
                    live.update(table(), refresh=True)
            finally:
                live.update(table(), refresh=True)

    return watch
