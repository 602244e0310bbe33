"""What a run's verdict exits with: the table in the README's "Exit codes", case by case."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rtbench.analysis.gate import Verdict
from rtbench.analysis.junit import junit_xml
from rtbench.analysis.verdict import RUN_CHECK, GateResult, run_verdict, status_line
from rtbench.process.exitcodes import (
    EXIT_GATE_FAILED,
    EXIT_INCOMPLETE,
    EXIT_NOTHING_MEASURED,
    EXIT_OK,
)

BROKEN = Verdict("ttfa.p95 < 800ms", False, 900.0, "800 ms", "ttfa.p95 = 900 ms, limit 800 ms")


@pytest.mark.parametrize("status, measured, verdicts, aborted, allow, code, run_ok", [
    ("complete", 10, [], None, False, EXIT_OK, True),
    ("complete", 0, [], None, False, EXIT_NOTHING_MEASURED, False),
    ("complete", 10, [BROKEN], None, False, EXIT_GATE_FAILED, True),   # the budget fails, not the run
    ("aborted", 0, [], {"messages": ["ttfa.p95 < 800ms: ..."]}, False, EXIT_GATE_FAILED,
     False),  # before any turn
    ("partial", 10, [], None, False, EXIT_INCOMPLETE, False),
    ("partial", 10, [], None, True, EXIT_OK, True),
    ("partial", 10, [BROKEN], None, False, EXIT_GATE_FAILED, False),
    ("recovered", 10, [], None, False, EXIT_INCOMPLETE, False),
    ("partial", 0, [], None, False, EXIT_NOTHING_MEASURED, False),
])
def test_exit_code_and_the_runs_own_check(
        status: str, measured: int, verdicts: list[Verdict], aborted: dict[str, list[str]] | None,
        allow: bool, code: int, run_ok: bool) -> None:
    """The exit code, and the run's own JUnit test case: it fails whenever the run failed for a
    reason of its own, so a CI test report agrees with the exit code even with no budgets."""
    result = GateResult("r", status, measured, verdicts, aborted, allow, "SIGINT")
    assert result.exit_code == code
    check = run_verdict(result)
    assert check.passed is run_ok and check.group == "run" and check.name == RUN_CHECK
    assert (code == EXIT_OK) == (run_ok and not verdicts)


def test_junit_without_budgets_still_holds_one_test_case() -> None:
    """CI systems read a JUnit file with no test case as "no tests ran"."""
    passed = ET.fromstring(junit_xml([run_verdict(GateResult("r", "complete", 100))], "r")
                           .split("\n", 1)[1])
    assert passed.get("tests") == "1" and passed.get("failures") == "0"
    (case,) = passed.iter("testcase")
    assert case.get("name") == RUN_CHECK and case.get("classname") == "rtbench.run"
    assert case.findtext("system-out") == "run complete: 100 turns measured"
    failed = ET.fromstring(junit_xml([run_verdict(GateResult("r", "partial", 7, reason="SIGTERM")),
                                      BROKEN], "r").split("\n", 1)[1])
    assert failed.get("tests") == "2" and failed.get("failures") == "2"
    suites = [(s.get("name"), [c.get("name") for c in s.iter("testcase")]) for s in failed]
    assert suites == [("rtbench.run", [RUN_CHECK]), ("rtbench.budgets", ["ttfa.p95 < 800ms"])]
    failure = next(failed.iter("failure"))
    assert failure.get("message") == "observed status partial, limit status complete"
    assert failure.text == ("run status partial (SIGTERM): its 7 turns cover part of the plan "
                            "(exit 5; --allow-partial accepts it)")


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
