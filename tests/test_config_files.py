"""Every TOML rtbench reads goes through one loader: each way a path can be wrong is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtbench.analysis.gate import load_budget_file
from rtbench.config.scenario import ConfigError, load_scenario
from rtbench.config.targets import load_targets
from rtbench.sim.faults import FaultPlanError, load_plan


@pytest.mark.parametrize("load, error", [(load_scenario, ConfigError), (load_budget_file, ConfigError),
                                         (load_targets, ConfigError), (load_plan, FaultPlanError)])
@pytest.mark.parametrize("make, says", [
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"name = \"\xff\xfe\"\n"), "not UTF-8"),
    (lambda p: p.write_text("[scenario\n", encoding="utf-8"), "invalid TOML"),
])
def test_each_bad_path_is_one_line_of_the_callers_error(tmp_path: Path, load, error, make, says) -> None:
    path = tmp_path / "file.toml"
    make(path)
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert says in message and str(path) in message and "\n" not in message
