"""Fault plans: parsing (TOML and flags) and deterministic decisions. No sockets, no clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtbench.sim import FaultPlan, FaultPlanError
from rtbench.sim.faults import Injector, load_plan, rule_from_flag

REPO = Path(__file__).resolve().parents[1]


def test_example_plan_in_the_repository_parses() -> None:
    plan = load_plan(REPO / "workloads" / "faults.example.toml")
    assert plan.seed == 7 and len(plan.rules) >= 5


def test_toml_plan_with_every_selector(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('seed = 3\n'
                    '[[fault]]\nkind = "tcp_drop"\nevery = 4\nafter_deltas = 2\n'
                    '[[fault]]\nkind = "handshake_429"\nsessions = [2, 5]\n'
                    '[[fault]]\nkind = "server_error_after_created"\nprobability = 0.25\n')
    plan = load_plan(path)
    drop, refuse, err = plan.rules
    assert (drop.every, drop.param("after_deltas")) == (4, 2.0)
    assert refuse.sessions == frozenset({2, 5})
    assert err.probability == 0.25 and plan.seed == 3


@pytest.mark.parametrize(("text", "message"), [
    ('[[fault]]\nkind = "nope"\nevery = 1\n', "unknown fault kind 'nope'"),
    ('[[fault]]\nkind = "stall"\n', "needs probability, every or sessions"),
    ('[[fault]]\nkind = "stall"\nprobability = 2\n', "probability must be a number within 0..1"),
    ('[[fault]]\nkind = "stall"\nevery = 0\n', "every must be a positive integer"),
    ('[[fault]]\nkind = "stall"\nevery = 1\nafter_s = 3\n', "unknown key 'after_s'"),
    ('[fault]\nkind = "stall"\n', "array of tables"),
    ('[[fault]\n', "plan.toml"),
])
def test_bad_plans_give_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(FaultPlanError, match=message) as info:
        load_plan(path)
    assert "\n" not in str(info.value)


def test_flags() -> None:
    assert rule_from_flag("server_error_after_created=0.1").probability == 0.1
    rule = rule_from_flag("tcp_drop=every:5,after_deltas=3")
    assert (rule.every, rule.param("after_deltas")) == (5, 3.0)
    rule = rule_from_flag("stall=sessions:1+4,response=2")
    assert rule.sessions == frozenset({1, 4}) and rule.response == 2
    for bad in ("stall", "stall=", "stall=every:x", "nope=0.5"):
        with pytest.raises(FaultPlanError):
            rule_from_flag(bad)


def test_every_and_sessions_select_exact_units() -> None:
    inj = Injector(FaultPlan((rule_from_flag("handshake_401=every:3"),
                              rule_from_flag("early_expiry=sessions:2+4"),
                              rule_from_flag("stall=sessions:1,response=2"))))
    assert [inj.on_connection() is not None for _ in range(7)] == [
        False, False, True, False, False, True, False]
    assert [bool(inj.on_session(n)) for n in range(1, 6)] == [False, True, False, True, False]
    assert [inj.on_response(1, k) is not None for k in (1, 2, 3)] == [False, True, False]
    assert inj.on_response(2, 2) is None


def test_probability_is_seeded_and_close_to_the_rate() -> None:
    def decisions(seed: int) -> list[bool]:
        inj = Injector(FaultPlan((rule_from_flag("response_failed_server_error=0.2"),), seed))
        return [inj.on_response(1, k) is not None for k in range(1, 2001)]

    a, b, c = decisions(1), decisions(1), decisions(2)
    assert a == b and a != c
    # binomial(2000, 0.2): sd ~17.9, so +-5 sd is 310..490
    assert 310 < sum(a) < 490


def test_first_matching_response_rule_wins() -> None:
    inj = Injector(FaultPlan((rule_from_flag("stall=every:2"), rule_from_flag("tcp_drop=every:1"))))
    kinds = [rule.kind for k in range(1, 5) if (rule := inj.on_response(1, k)) is not None]
    assert kinds == ["tcp_drop", "stall", "tcp_drop", "stall"]
