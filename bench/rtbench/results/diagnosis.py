"""Plain-words diagnosis of a run whose target failed in a way the user can fix.

Errors are recorded per session as they happen (errors.jsonl). When *every* session of a target
failed the same way before its first turn, the cause is almost surely the configuration, not
the service's luck, so the run ends with one line per such target saying so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

_HTTP = re.compile(r"^HTTP (\d{3}): (.*)$", re.DOTALL)


def _first_failure(target_errors: pd.DataFrame, session_idx: int) -> Mapping[str, Any]:
    rows = target_errors[target_errors["session_idx"] == session_idx]
    return dict(rows.sort_values("t_s").iloc[0])


def unanimous_failures(turns: pd.DataFrame, errors: pd.DataFrame,
                       targets: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per target whose every session failed identically before any turn started."""
    lines = []
    for t in targets:
        name, sessions = str(t["name"]), int(t["sessions"])
        if sessions == 0 or (len(turns) and (turns["target"] == name).any()):
            continue
        te = errors[(errors["target"] == name) & errors["phase"].isin(["connect", "session"])]
        if te["session_idx"].nunique() != sessions:
            continue
        firsts = [_first_failure(te, int(i)) for i in sorted(te["session_idx"].unique())]
        kinds = {(f["kind"], f["code"], f["message"]) for f in firsts}
        if len(kinds) != 1:
            continue
        kind, _code, message = kinds.pop()
        http = _HTTP.match(str(message))
        if kind == "http_status" and http:
            lines.append(f"target {name}: every handshake refused with HTTP {http.group(1)}: "
                         f"{http.group(2)}")
        elif kind == "http_status" or firsts[0]["phase"] == "connect":
            lines.append(f"target {name}: every connection failed: {message}")
        else:
            lines.append(f"target {name}: every session failed during set-up: {message}")
    return lines
