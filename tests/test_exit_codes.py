"""What a run's verdict exits with: the table in the README's "Exit codes", case by case."""

from __future__ import annotations

import pytest

from rtbench.analysis.gate import Verdict
from rtbench.analysis.verdict import GateResult, status_line
from rtbench.process.exitcodes import (
    EXIT_GATE_FAILED,
    EXIT_INCOMPLETE,
    EXIT_NOTHING_MEASURED,
    EXIT_OK,
)

BROKEN = Verdict("ttfa.p95 < 800ms", False, 900.0, "800 ms", "ttfa.p95 = 900 ms, limit 800 ms")


@pytest.mark.parametrize("status, measured, verdicts, aborted, allow, code", [
    ("complete", 10, [], None, False, EXIT_OK),
    ("complete", 0, [], None, False, EXIT_NOTHING_MEASURED),
    ("complete", 10, [BROKEN], None, False, EXIT_GATE_FAILED),
    ("aborted", 0, [], {"budget": "ttfa.p95 < 800ms"}, False, EXIT_GATE_FAILED),  # before any turn
    ("partial", 10, [], None, False, EXIT_INCOMPLETE),
    ("partial", 10, [], None, True, EXIT_OK),
    ("partial", 10, [BROKEN], None, False, EXIT_GATE_FAILED),
    ("recovered", 10, [], None, False, EXIT_INCOMPLETE),
    ("partial", 0, [], None, False, EXIT_NOTHING_MEASURED),
])
def test_exit_code(status: str, measured: int, verdicts: list[Verdict], aborted: dict[str, str] | None,
                   allow: bool, code: int) -> None:
    result = GateResult("r", status, measured, verdicts, aborted, allow, "SIGINT")
    assert result.exit_code == code


def test_an_incomplete_run_says_so_in_one_line() -> None:
    line = status_line(GateResult("r", "partial", 3, [], None, False, "shard_failure"))
    assert line is not None and "partial (shard_failure)" in line and "exit 5" in line
    assert status_line(GateResult("r", "complete", 3)) is None


def test_turns_a_stopped_run_never_started_are_not_run_not_failed() -> None:
    import pandas as pd

    from rtbench.metrics.tallies import TargetInfo, not_run_turns

    sessions = pd.DataFrame([
        {"target": "t", "status": "stopped", "retried": False, "turns_ok": 1, "turns_failed": 0},
        {"target": "t", "status": "failed", "retried": False, "turns_ok": 0, "turns_failed": 1},
        {"target": "t", "status": "ok", "retried": False, "turns_ok": 3, "turns_failed": 0},
    ])
    targets = [TargetInfo("t", "r", "m", 4)]   # the 4th planned session never began
    assert not_run_turns(sessions, targets, 3, stopped=True) == {"t": 2 + 3}
    assert not_run_turns(sessions, targets, 3, stopped=False) == {"t": 2}
