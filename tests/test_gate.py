"""Budget parsing and evaluation (pure: no sockets, no files)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rtbench.analysis.bootstrap import bootstrap_diff, quantile, resolvable
from rtbench.analysis.gate import (
    Budget,
    BudgetError,
    RunData,
    Tally,
    TargetInfo,
    evaluate_one,
    load_budget_file,
    parse_budget,
    parse_budgets,
)
from rtbench.metrics.recorder import GENERATOR, LOOP_LAG, SEND_LATENESS, Recorder

from conftest import REPO


@pytest.mark.parametrize(("text", "metric", "stat", "filters", "op", "limit"), [
    ("ttfa.p95 < 800ms", "ttfa_ms", "p95", (), "<", 800.0),
    ("ttfa_ms.p(99) <= 1.2s", "ttfa_ms", "p99", (), "<=", 1200.0),
    ("ttfa.p99{region=eastus2} < 1200ms", "ttfa_ms", "p99", (("region", "eastus2"),), "<", 1200.0),
    ("vad.p99.9 < 900", "vad_ms", "p99.9", (), "<", 900.0),
    ("error_rate < 1%", "error_rate", None, (), "<", 0.01),
    ("session_error_rate{model=x} < 0.5%", "session_error_rate", None, (("model", "x"),), "<",
     0.005),
    ("error_rate <= 0.02", "error_rate", None, (), "<=", 0.02),
    ("errors{code=rate_limit_exceeded, phase=turn} == 0", "errors", None,
     (("code", "rate_limit_exceeded"), ("phase", "turn")), "==", 0.0),
    ("turns_ok >= 100", "turns_ok", None, (), ">=", 100.0),
    ("ttfa.count >= 10", "ttfa_ms", "count", (), ">=", 10.0),
    ("loop_lag.max < 50ms", "loop_lag_ms", "max", (), "<", 50.0),
    ("connect.mean < 250us", "connect_ms", "mean", (), "<", 0.25),
])
def test_parse_budget(text: str, metric: str, stat: str | None, filters: tuple[tuple[str, str], ...],
                      op: str, limit: float) -> None:
    b = parse_budget(text)
    assert (b.metric, b.stat, b.filters, b.op) == (metric, stat, filters, op)
    assert b.limit == pytest.approx(limit)


@pytest.mark.parametrize(("text", "why"), [
    ("ttfa.p95 800ms", "no comparison"),
    ("tffa.p95 < 800ms", "unknown metric 'tffa'"),
    ("ttfa < 800ms", "needs a statistic"),
    ("ttfa.p95 < 5%", "'%' is not a unit for a latency"),
    ("ttfa.p101 < 5", "within (0, 100]"),
    ("ttfa.median < 5", "unknown statistic"),
    ("ttfa.p95{zone=a} < 5", "unknown filter 'zone'"),
    ("ttfa.p95{code=x} < 5", "unknown filter 'code'"),
    ("ttfa.p95{region} < 5", "must be key=value"),
    ("error_rate.p95 < 1%", "takes no statistic"),
    ("error_rate < 1ms", "not a unit for a rate"),
    ("errors < 5%", "a count takes no unit"),
    ("ttfa.p95 < fast", "cannot read the limit"),
    ("1 < ttfa.p95 < 2", "more than one comparison"),
    ("ttfa p95 < 2", "cannot read the metric"),
])
def test_bad_budgets_give_one_line_naming_the_budget(text: str, why: str) -> None:
    with pytest.raises(BudgetError) as info:
        parse_budget(text)
    msg = str(info.value)
    assert msg.startswith(f"budget {text!r}:") and why in msg and "\n" not in msg


def _data(final: bool = True, min_turns: int = 1) -> RunData:
    """Two targets, 10 sessions × 2 turns each; TTFA 100..199 ms in a, 500 ms in b."""
    targets = (TargetInfo("a", "eastus2", "m1", 10, "low"), TargetInfo("b", "westus", "m2", 10))
    rec = Recorder()
    for v in range(100, 200):
        rec.record_ms("a", "ttfa_ms", float(v))
    for _ in range(10):
        rec.record_ms("b", "ttfa_ms", 500.0)
    turns = pd.DataFrame({"target": ["a"] * 20 + ["b"] * 18,
                          "status": ["ok"] * 20 + ["ok"] * 16 + ["timeout"] * 2})
    errors = pd.DataFrame({"target": ["b", "b", "b"], "session_idx": [1, 1, 3],
                           "phase": ["turn", "turn", "connect"],
                           "kind": ["timeout", "timeout", "http_status"],
                           "code": ["turn_timeout", "turn_timeout", "429"]})
    tally = Tally.from_tables(turns, errors, targets, 2)
    return RunData(targets, 2, rec, tally, final=final, min_turns=min_turns)


def _check(text: str, data: RunData | None = None) -> tuple[bool, float | None]:
    v = evaluate_one(parse_budget(text), data or _data())
    return v.passed, v.observed


def test_latency_budgets_merge_matching_targets() -> None:
    passed, observed = _check("ttfa.p50{region=eastus2} < 160ms")
    assert passed and observed == pytest.approx(149.0, abs=0.2)
    # the reasoning effort is a label like region and model
    assert _check("ttfa.p50{effort=low} < 160ms") == (True, pytest.approx(149.0, abs=0.2))
    assert _check("ttfa.max{effort=high} < 600ms") == (False, None)  # no such target
    passed, observed = _check("ttfa.max < 400ms")
    assert not passed and observed == pytest.approx(500.0, rel=1e-3)
    assert _check("ttfa.p99{model=m2} < 400ms") == (False, pytest.approx(500.0, rel=1e-3))
    assert _check("ttfa.count == 110") == (True, 110.0)


def test_rates_and_counts() -> None:
    # b: 20 planned turns, 16 ok -> 20% lost; a: none lost; overall 4/40.
    assert _check("error_rate{target=b} < 20%") == (False, pytest.approx(0.2))
    assert _check("error_rate < 11%") == (True, pytest.approx(0.1))
    assert _check("session_error_rate < 10%") == (False, pytest.approx(0.1))
    assert _check("errors{code=429} < 1") == (False, 1.0)
    assert _check("errors{phase=turn} <= 2") == (True, 2.0)
    assert _check("turns_failed == 2") == (True, 2.0)
    assert _check("turns >= 38") == (True, 38.0)


def test_premature_rate_counts_turns_answered_before_the_end_of_speech() -> None:
    data = _data()
    turns = pd.DataFrame({"target": ["a"] * 20, "status": ["ok"] * 20,
                          "premature": [True] * 5 + [False] * 15})
    data = RunData(data.targets, 2, data.recorder, Tally.from_tables(
        turns, pd.DataFrame(columns=["target", "session_idx", "phase", "kind", "code"]),
        data.targets, 2), final=True)
    assert _check("premature_rate{target=a} < 20%", data) == (False, pytest.approx(0.25))
    assert _check("premature_rate < 30%", data) == (True, pytest.approx(0.25))
    # a run's tables without the column (older runs): nothing premature
    assert _check("premature_rate == 0") == (True, 0.0)
    live = RunData(data.targets, 2, data.recorder, data.tally, final=False)
    # 5 of the 40 planned turns are premature already: at best 12.5% at the end, so a 10%
    # budget is broken for certain; 20% may still be met by 20 timely turns to come
    assert evaluate_one(parse_budget("premature_rate < 10%"), live).certain
    assert not evaluate_one(parse_budget("premature_rate < 20%"), live).certain


def test_a_budget_that_sees_nothing_fails() -> None:
    v = evaluate_one(parse_budget("ttfa.p95{region=nowhere} < 1s"), _data())
    assert not v.passed and v.observed is None and v.observed_text == "no data"
    assert v.message == ("ttfa.p95{region=nowhere} < 1s: matched no data (no target has "
                         "region=nowhere; the run's targets: a (region eastus2, model m1); "
                         "b (region westus, model m2)): cannot be checked, so it fails")
    v = evaluate_one(parse_budget("vad.p95 < 1s"), _data())
    assert not v.passed and "matched no data (no vad sample)" in v.message


def test_live_verdicts_are_certain_only_when_the_end_cannot_save_them() -> None:
    live = _data(final=False, min_turns=20)
    # errors only grow: already 1 > 0 allowed.
    assert evaluate_one(parse_budget("errors{code=429} == 0"), live).certain
    # 4 lost of 40 planned is already 10%: a 5% budget cannot be met any more...
    assert evaluate_one(parse_budget("error_rate < 5%"), live).certain
    # ...but 20% still can.
    assert not evaluate_one(parse_budget("error_rate < 20%"), live).certain
    # b has completed 16 turns (< min_turns 20): not judged yet; a has completed 20.
    assert not evaluate_one(parse_budget("ttfa.p50{target=b} < 100ms"), live).certain
    assert evaluate_one(parse_budget("ttfa.p50{target=a} < 100ms"), live).certain
    # max can only grow; min can only fall.
    assert evaluate_one(parse_budget("ttfa.max{target=b} < 100ms"), live).certain
    assert evaluate_one(parse_budget("ttfa.min{target=b} > 600ms"), live).certain
    assert not evaluate_one(parse_budget("ttfa.min{target=b} < 100ms"), live).certain


def test_live_percentiles_wait_for_completed_turns_not_for_samples() -> None:
    """--abort-min-turns counts turns. The metric's own samples are no measure of how far the
    run got: 50 sessions connect (50 connect samples) and the generator probes its loop every
    10 ms (20 samples in 0.2 s) long before one turn has finished."""
    targets = (TargetInfo("a", "local", "m", 50),)
    rec = Recorder()
    for _ in range(50):
        rec.record_ms("a", "connect_ms", 300.0)
    for v in range(500):  # 5 s of loop probes while the sessions connect: p99 40 ms
        rec.record_ms(GENERATOR, LOOP_LAG, 40.0 if v % 50 == 0 else 1.0)
        rec.record_ms("a", SEND_LATENESS, 30.0 if v % 50 == 0 else 0.5)
    no_turns = Tally()
    twenty_turns = Tally()
    for _ in range(20):
        twenty_turns.add_turn("a", "ok")
    budgets = [parse_budget(t) for t in ("connect.p50 < 100ms", "loop_lag.p99 < 10ms",
                                         "send_lateness.p99 < 20ms", "connect.mean < 100ms")]

    def certain(tally: Tally, final: bool = False) -> list[bool]:
        data = RunData(targets, 2, rec, tally, final=final, min_turns=20)
        return [evaluate_one(b, data).certain for b in budgets]

    assert certain(no_turns) == [False, False, False, False]
    # 20 turns done: the target's percentiles and means are judged; the generator's are not
    assert certain(twenty_turns) == [True, False, False, True]
    # ...until the end, where every budget is judged on the whole run
    assert certain(twenty_turns, final=True) == [True, True, True, True]
    # the generator's max can only grow: over budget is certain at once
    assert evaluate_one(parse_budget("loop_lag.max < 10ms"),
                        RunData(targets, 2, rec, no_turns, final=False, min_turns=20)).certain


@pytest.mark.parametrize(("stat", "needed"), [("p50", 20), ("p95", 100), ("p99", 500)])
def test_a_live_percentile_needs_five_turns_beyond_it(stat: str, needed: int) -> None:
    """The p99 of 20 turns is their maximum: one slow turn must not abort a run whose p99
    over all its turns may still keep the budget. A percentile is judged live once it has five
    samples beyond it (and --abort-min-turns turns, 20 here)."""
    targets = (TargetInfo("a", "local", "m", 1000),)

    def certain(turns: int) -> bool:
        rec, tally = Recorder(), Tally()
        for i in range(turns):
            rec.record_ms("a", "ttfa_ms", 500.0 if i % 10 == 0 else 900.0)   # 90 % over it
            tally.add_turn("a", "ok")
        data = RunData(targets, 1, rec, tally, final=False, min_turns=20)
        return evaluate_one(parse_budget(f"ttfa.{stat} < 800ms"), data).certain

    assert not certain(needed - 1) and certain(needed)


def test_budget_kind() -> None:
    assert Budget("x", "ttfa_ms", "count", (), "<", 1).kind == "count"
    assert parse_budget("ttfa.p95 < 1").kind == "latency"


def test_bootstrap_diff_finds_a_real_shift_and_not_noise() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(np.log(700), 0.3, 400)
    same = rng.lognormal(np.log(700), 0.3, 400)
    slower = rng.lognormal(np.log(900), 0.3, 400)
    p95 = quantile(0.95)
    shifted = bootstrap_diff(base, slower, p95, n_resamples=1000, seed=1)
    assert shifted[1] > 0 and resolvable(shifted[1], shifted[2])
    assert shifted[0] == pytest.approx(float(np.percentile(slower, 95) - np.percentile(base, 95)))
    noise = bootstrap_diff(base, same, p95, n_resamples=1000, seed=1)
    assert noise[1] < 0 < noise[2] and not resolvable(noise[1], noise[2])
    # Seeded: the same inputs give the same interval.
    assert bootstrap_diff(base, slower, p95, n_resamples=1000, seed=1) == shifted
    with pytest.raises(ValueError):
        bootstrap_diff([], [1.0], p95)
    assert math.isfinite(bootstrap_diff([1.0], [2.0], p95, n_resamples=10)[0])



def test_the_example_budget_file_parses() -> None:
    texts = load_budget_file(REPO / "workloads" / "budgets.example.toml")
    assert len(texts) >= 5 and len(parse_budgets(texts)) == len(texts)
