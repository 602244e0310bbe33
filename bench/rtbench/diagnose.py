"""Plain-words explanations of failures a user can fix: wrong protocol, refused handshakes.

Errors are recorded per session as they happen (errors.jsonl). When *every* session of a target
failed the same way before its first turn, the cause is almost surely the configuration, not
the service's luck, so the run ends with one line per such target saying so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .protocol import Dialect, ErrorInfo

PREVIEW_HINT = ("the server speaks the preview (beta) protocol; set protocol = \"preview\" for this "
                "target")
GA_HINT = "the server speaks the GA protocol; set protocol = \"ga\" for this target"
RETIRED_HINT = ("OpenAI no longer accepts the beta protocol; set protocol = \"ga\" (the beta "
                "shape remains only on Azure's dated api-version path)")
_HTTP = re.compile(r"^HTTP (\d{3}): (.*)$", re.DOTALL)


def explain_session_error(info: ErrorInfo, dialect: Dialect) -> str | None:
    """A hint when a set-up ``error`` shows that client and server speak different generations.

    A GA ``session.update`` on the preview path is refused with ``unknown_parameter`` on
    ``session.type`` (protocol reference §1.2, §5.2); a beta one on a GA path with an unknown beta
    field or a missing ``session.type``.
    """
    if info.code == "beta_api_shape_disabled":
        return RETIRED_HINT
    param = info.param or ""
    if dialect is Dialect.GA and info.code == "unknown_parameter" and param == "session.type":
        return PREVIEW_HINT
    if dialect is Dialect.BETA and (
        (info.code == "unknown_parameter" and param.startswith("session."))
        or (info.code == "missing_required_parameter" and param == "session.type")
    ):
        return GA_HINT
    return None


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
