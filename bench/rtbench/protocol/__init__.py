"""Sans-IO Realtime protocol layer shared by the rtbench client and simulator."""

from .codec import ProtocolViolation as ProtocolViolation
from .codec import decode as decode
from .codec import encode as encode
from .connection import Connection as Connection
from .connection import Role as Role
from .connection import new_id as new_id
from .dialect import Dialect as Dialect
from .dialect import SessionUpdateRejected as SessionUpdateRejected
from .dialect import session_from_wire as session_from_wire
from .dialect import session_to_wire as session_to_wire
from .events import ErrorInfo as ErrorInfo
from .events import Event as Event
from .events import EventType as EventType
from .session_config import SessionConfig as SessionConfig
from .session_config import TurnDetection as TurnDetection

__all__ = [
    "Connection",
    "Dialect",
    "ErrorInfo",
    "Event",
    "EventType",
    "ProtocolViolation",
    "Role",
    "SessionConfig",
    "SessionUpdateRejected",
    "TurnDetection",
    "decode",
    "encode",
    "new_id",
    "session_from_wire",
    "session_to_wire",
]
