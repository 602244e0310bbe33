"""The built-in protocol-faithful Realtime simulator (``rtbench serve``)."""

from .behaviour import Close as Close
from .behaviour import SimSession as SimSession
from .profile import Dist as Dist
from .profile import Profile as Profile
from .server import SimConfig as SimConfig
from .server import SimServer as SimServer

__all__ = ["Close", "Dist", "Profile", "SimConfig", "SimServer", "SimSession"]
