"""The built-in protocol-faithful Realtime simulator (``rtbench serve``)."""

from .behaviour import Close as Close
from .behaviour import SimSession as SimSession
from .faults import FaultPlan as FaultPlan
from .faults import FaultPlanError as FaultPlanError
from .faults import FaultRule as FaultRule
from .profile import Dist as Dist
from .profile import Profile as Profile
from .server import SimConfig as SimConfig
from .server import SimServer as SimServer
from .stats import SimStats as SimStats

__all__ = ["Close", "Dist", "FaultPlan", "FaultPlanError", "FaultRule", "Profile", "SimConfig",
           "SimServer", "SimSession", "SimStats"]
