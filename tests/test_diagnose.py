"""Plain-words failure lines and session interleaving (pure, no sockets)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from rtbench.client.engine import assign_targets
from rtbench.protocol import Dialect, ErrorInfo
from rtbench.protocol.diagnose import GA_HINT, PREVIEW_HINT, explain_session_error
from rtbench.results.diagnosis import unanimous_failures
from rtbench.results.schema import ERRORS, TURNS


def test_explain_dialect_mismatch_both_ways() -> None:
    ga_on_preview = ErrorInfo("invalid_request_error", "unknown_parameter",
                              "Unknown parameter: 'session.type'.", "session.type")
    assert explain_session_error(ga_on_preview, Dialect.GA) == PREVIEW_HINT
    beta_on_ga = ErrorInfo("invalid_request_error", "unknown_parameter",
                           "Unknown parameter: 'session.modalities'.", "session.modalities")
    assert explain_session_error(beta_on_ga, Dialect.BETA) == GA_HINT
    assert explain_session_error(beta_on_ga, Dialect.GA) is None  # a real GA mistake, no hint
    other = ErrorInfo("invalid_request_error", "invalid_value", "x", "session.voice")
    assert explain_session_error(other, Dialect.GA) is None


def _errors(rows: list[dict]) -> pd.DataFrame:
    base = {"region": "r", "model": "m", "session_id": None, "turn_idx": None, "t_s": 0.0}
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(ERRORS.names))


def test_unanimous_handshake_refusal_gives_one_line_per_target() -> None:
    refused = {"phase": "connect", "kind": "http_status", "code": "401",
               "message": "HTTP 401: Access denied due to invalid subscription key."}
    errors = _errors([{"target": "a", "session_idx": i, **refused} for i in (0, 2)]
                     + [{"target": "b", "session_idx": 1, **refused}])
    turns = pd.DataFrame(columns=list(TURNS.names))
    targets = [{"name": "a", "sessions": 2}, {"name": "b", "sessions": 2}]
    assert unanimous_failures(turns, errors, targets) == [
        "target a: every handshake refused with HTTP 401: Access denied due to invalid "
        "subscription key."]  # b had a session that did not fail


def test_mixed_or_partial_failures_give_no_line() -> None:
    e = {"phase": "connect", "kind": "http_status", "code": "429"}
    errors = _errors([{"target": "a", "session_idx": 0, "message": "HTTP 429: slow down", **e},
                      {"target": "a", "session_idx": 1, "message": "HTTP 401: no", **e}])
    turns = pd.DataFrame(columns=list(TURNS.names))
    assert unanimous_failures(turns, errors, [{"name": "a", "sessions": 2}]) == []
    conn = {"phase": "connect", "kind": "connect", "code": "connect_error",
            "message": "cannot connect to h:1: Connection refused"}
    errors = _errors([{"target": "a", "session_idx": i, **conn} for i in (0, 1)])
    assert unanimous_failures(turns, errors, [{"name": "a", "sessions": 2}]) == [
        "target a: every connection failed: cannot connect to h:1: Connection refused"]


@pytest.mark.parametrize("interleave", ["rr", "random"])
def test_sessions_are_shared_equally_and_interleaved(interleave: str) -> None:
    order = assign_targets(10, 3, interleave, seed=7)
    assert Counter(order) == {0: 4, 1: 3, 2: 3}
    assert assign_targets(10, 3, interleave, seed=7) == order  # seeded
    if interleave == "rr":
        assert order[:6] == [0, 1, 2, 0, 1, 2]
    else:
        assert order != assign_targets(10, 3, "rr") and order != assign_targets(10, 3, "random", 8)
    with pytest.raises(ValueError):
        assign_targets(3, 2, "blocks")
