"""Provider adapters: one per wire protocol, behind the interface in :mod:`.base`.

Importing this package registers the built-in adapters (OpenAI GA and beta/preview).
"""

from .base import Adapter as Adapter
from .base import create as create
from .base import names as names
from .base import register as register
from .openai import OpenAIRealtime as OpenAIRealtime
from .openai import for_dialect as for_dialect

__all__ = ["Adapter", "OpenAIRealtime", "create", "for_dialect", "names", "register"]
