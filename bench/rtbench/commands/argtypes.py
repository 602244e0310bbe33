"""Argument types shared by the sub-commands: durations with units.

Every flag that takes a time accepts a Go-style duration (``30s``, ``5m``, ``1h30m``,
``250ms``) or a plain number in the flag's own unit (seconds, or milliseconds for ``*-ms``
flags); NaN, infinities and negative values are refused with one line. The units are the
budget parser's (:data:`~rtbench.metrics.units.LATENCY_UNITS_MS`) plus Go's ``ns``, ``m``, ``h``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from ..metrics.units import LATENCY_UNITS_MS

_UNITS_MS: dict[str, float] = {
    **{unit: ms for unit, ms in LATENCY_UNITS_MS.items() if unit is not None},
    "ns": 1e-6, "m": 60_000.0, "h": 3_600_000.0,
}
# Longest unit first, so that "ms" is not read as "m" followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(" + "|".join(sorted(_UNITS_MS, key=len, reverse=True)) + ")")
_EXAMPLES = "e.g. 30s, 5m, 1h30m or 250ms"


def parse_duration(text: str, unit: str = "s") -> float:
    """``text`` as a number of ``unit`` (``"s"`` or ``"ms"``); ValueError says what is wrong."""
    s = text.strip()
    try:
        ms = float(s) * _UNITS_MS[unit]  # a plain number is in the flag's own unit
    except ValueError:
        body = s.lstrip("+-")
        ms, pos = 0.0, 0
        while pos < len(body) and (m := _PART.match(body, pos)):
            ms += float(m.group(1)) * _UNITS_MS[m.group(2)]
            pos = m.end()
        if s.startswith("-"):
            ms = -ms
        if not body or pos < len(body):
            raise ValueError(f"{text!r} is not a duration ({_EXAMPLES}; "
                             f"a plain number is {'seconds' if unit == 's' else 'milliseconds'})"
                             ) from None
    if not math.isfinite(ms):
        raise ValueError(f"{text!r} is not a finite duration")
    if ms < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    return ms / _UNITS_MS[unit]


def duration(unit: str) -> Callable[[str], float]:
    """An argparse ``type=`` reading :func:`parse_duration` in ``unit``."""

    def parse(text: str) -> float:
        try:
            return parse_duration(text, unit)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


#: ``type=`` of flags in seconds and in milliseconds.
SECONDS = duration("s")
MILLISECONDS = duration("ms")
