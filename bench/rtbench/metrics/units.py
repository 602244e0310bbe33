"""Time units a user may write (budgets, durations), in milliseconds: one table for both."""

from __future__ import annotations

#: Unit suffix -> milliseconds; ``None`` (no suffix) is milliseconds in a latency budget.
LATENCY_UNITS_MS: dict[str | None, float] = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001,
                                             None: 1.0}
