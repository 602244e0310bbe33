"""The summary by region × model × reasoning effort, and the table printed at a run's end."""

from __future__ import annotations

import pandas as pd
import pytest

from rtbench.metrics.recorder import Recorder
from rtbench.metrics.records import ErrorRecord, TurnRecord
from rtbench.results.summary import format_table, summarize

TARGETS = [{"name": "low", "region": "eastus2", "model": "gpt-realtime-2", "effort": "low",
            "sessions": 2},
           {"name": "high", "region": "eastus2", "model": "gpt-realtime-2", "effort": "high",
            "sessions": 2}]


def _tables(targets: list[dict[str, object]]) -> tuple[pd.DataFrame, pd.DataFrame, Recorder]:
    recorder = Recorder()
    turns, errors = [], []
    for t in targets:
        name = str(t["name"])
        base = 400.0 if name == "low" else 1200.0
        for i in range(2):
            rec = TurnRecord(name, str(t["region"]), str(t["model"]), i, None, 0, "u",
                             status="ok", ttfb_ms=base + i, ttfa_ms=base + 250 + i,
                             ttfa_answer_ms=base + 800 + i, premature=i == 1,
                             effort=t.get("effort"))  # type: ignore[arg-type]
            turns.append(rec.as_dict())
            if not rec.premature:
                for metric in ("ttfb_ms", "ttfa_ms", "ttfa_answer_ms"):
                    recorder.record_ms(name, metric, getattr(rec, metric))
        errors.append(ErrorRecord(name, str(t["region"]), str(t["model"]), 1, None, 1, "turn",
                                  "no_audio", "no_audio", "nothing audible", 1.0).as_dict())
    return pd.DataFrame(turns), pd.DataFrame(errors), recorder


def test_targets_that_differ_only_in_effort_are_summarized_apart() -> None:
    turns, errors, recorder = _tables(TARGETS)
    summary = summarize(turns, errors, recorder, TARGETS, 1)
    assert list(summary["effort"]) == ["high", "low"]  # sorted groups
    assert list(summary["ttfb_ms_p50"]) == pytest.approx([1200.0, 400.0], rel=1e-3)  # HDR
    assert list(summary["premature"]) == [1, 1] and list(summary["no_audio"]) == [1, 1]
    table = format_table(summary)
    lines = table.splitlines()
    assert lines[0].split() == ["region", "model", "effort", "sess", "ok", "err", "%", "TTFB",
                                "p50/95", "TTFA", "p50/95", "answer", "p50/95", "premature",
                                "no_audio"]
    assert max(len(line) for line in lines) <= 105
    # the low-effort target: TTFB, TTFA and the answer's TTFA, p50/p95 in whole ms (its
    # premature turn left out of the histograms)
    assert lines[2].split() == ["eastus2", "gpt-realtime-2", "low", "2", "2", "0.0", "400/400",
                                "650/650", "1200/1200", "1", "1"]


def test_without_any_effort_the_table_has_no_effort_column() -> None:
    plain = [{**t, "effort": None, "name": t["name"], "region": f"r{i}"}
             for i, t in enumerate(TARGETS)]
    turns, errors, recorder = _tables(plain)
    summary = summarize(turns, errors, recorder, plain, 1)
    assert list(summary["effort"]) == ["", ""]
    assert "effort" not in format_table(summary).splitlines()[0]
    # a manifest written before the effort column existed summarizes the same way
    old = [{k: v for k, v in t.items() if k != "effort"} for t in plain]
    assert summarize(turns, errors, recorder, old, 1).equals(summary)
