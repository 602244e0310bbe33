"""Current model ids, retiring ones, and what rtbench does with them (reference §10.1, §10.5)."""

from __future__ import annotations

import argparse

import pytest

from rtbench.commands.destination import add_destination_args, destination_from
from rtbench.protocol import Dialect
from rtbench.protocol.models import CURRENT_MODELS, DEFAULT_MODEL, SIMULATOR_LABEL, deprecation
from rtbench.protocol.taxonomy import FATAL, RETRYABLE, classify
from rtbench.sim.payloads import reported_model


def _destination(url: str) -> object:
    p = argparse.ArgumentParser()
    add_destination_args(p)
    return destination_from(p.parse_args(["--url", url, "--allow-insecure"]))


def test_a_target_on_a_retiring_model_gets_one_warning_naming_the_date(
        capsys: pytest.CaptureFixture[str]) -> None:
    _destination("ws://127.0.0.1:9/v1/realtime?model=gpt-realtime-mini")
    err = capsys.readouterr().err
    assert err.count("warning") == 1
    assert "target local/gpt-realtime-mini: model gpt-realtime-mini shuts down on 2027-01-20" in err
    _destination(f"ws://127.0.0.1:9/v1/realtime?model={DEFAULT_MODEL}")
    assert capsys.readouterr().err == ""


def test_retiring_and_current_ids() -> None:
    assert deprecation("whisper-1") is not None and "2027-02-26" in str(deprecation("whisper-1"))
    assert all(deprecation(m) is None for m in CURRENT_MODELS)
    assert DEFAULT_MODEL in CURRENT_MODELS


def test_the_simulator_reports_a_current_model_for_its_own_label() -> None:
    assert reported_model(SIMULATOR_LABEL, Dialect.GA) == DEFAULT_MODEL
    assert reported_model("gpt-realtime-2.1", Dialect.GA) == "gpt-realtime-2.1"


@pytest.mark.parametrize(("code", "severity"), [
    ("1012", RETRYABLE), ("1013", RETRYABLE), ("1006", RETRYABLE), ("1001", FATAL)])
def test_service_restart_and_try_again_later_closes_are_retryable(code: str, severity: str
                                                                  ) -> None:
    assert classify("close", code) == severity
