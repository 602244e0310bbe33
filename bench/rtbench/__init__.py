"""rtbench: load and latency benchmarking for Realtime speech-to-speech WebSocket APIs.

The package is layered (see the README's "Layout"); importing ``rtbench`` or one of its lower
layers (``rtbench.protocol`` is sans-IO) loads nothing else: the names below are re-exported
lazily, on first access, so ``import rtbench.protocol`` never pulls in trio or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "ConfigError": "rtbench.config.scenario",
    "ErrorRecord": "rtbench.metrics.records",
    "Recorder": "rtbench.metrics.recorder",
    "RunPlan": "rtbench.client.engine",
    "Scenario": "rtbench.config.scenario",
    "SessionRecord": "rtbench.metrics.records",
    "Target": "rtbench.config.scenario",
    "TurnRecord": "rtbench.metrics.records",
    "load_scenario": "rtbench.config.scenario",
}

__all__ = [
    "ConfigError",
    "ErrorRecord",
    "Recorder",
    "RunPlan",
    "Scenario",
    "SessionRecord",
    "Target",
    "TurnRecord",
    "__version__",
    "load_scenario",
]

if TYPE_CHECKING:
    from .client.engine import RunPlan
    from .config.scenario import ConfigError, Scenario, Target, load_scenario
    from .metrics.recorder import Recorder
    from .metrics.records import ErrorRecord, SessionRecord, TurnRecord


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rtbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
