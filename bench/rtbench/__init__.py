"""rtbench: load and latency benchmarking for Realtime speech-to-speech WebSocket APIs."""

from .config import ConfigError as ConfigError
from .config import Scenario as Scenario
from .config import Target as Target
from .config import load_scenario as load_scenario
from .engine import RunPlan as RunPlan
from .metrics import Recorder as Recorder
from .records import ErrorRecord as ErrorRecord
from .records import TurnRecord as TurnRecord

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ErrorRecord",
    "Recorder",
    "RunPlan",
    "Scenario",
    "Target",
    "TurnRecord",
    "__version__",
    "load_scenario",
]
