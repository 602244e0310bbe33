"""The referee: every event the simulator sends in the tests is checked against the openai SDK.

The SDK's own ``parse_event`` does not validate (protocol reference §0.5), so this builds a
discriminated pydantic adapter from the members of the SDK's server-event unions (GA and beta)
and validates each frame by its ``type``: a wrong name or a missing required field fails with a
short, specific error instead of a 46-member union dump.
"""

from __future__ import annotations

import threading
from collections import Counter
from functools import cache
from typing import Annotated, Any, Union, get_args

import orjson
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GaServerEvent
from pydantic import Field, TypeAdapter, ValidationError

from rtbench.protocol import Dialect


@cache
def adapter(dialect: Dialect) -> TypeAdapter[Any]:
    union = GaServerEvent if dialect is Dialect.GA else BetaServerEvent
    members = get_args(get_args(union)[0])  # Annotated[Union[...], PropertyInfo] -> members
    return TypeAdapter(Annotated[Union[members], Field(discriminator="type")])  # noqa: UP007


def validate(dialect: Dialect, obj: dict[str, Any]) -> None:
    """Raise ValidationError if ``obj`` is not a valid server event of ``dialect``."""
    adapter(dialect).validate_python(obj)


class Referee:
    """Collects server frames (from any thread) and validates them at the end of a test."""

    def __init__(self) -> None:
        self.frames: list[tuple[Dialect, str]] = []
        self.seen: Counter[tuple[Dialect, str]] = Counter()
        self._lock = threading.Lock()

    def observe(self, dialect: Dialect, text: str) -> None:
        with self._lock:
            self.frames.append((dialect, text))

    def check(self) -> list[str]:
        """Validate what was observed since the last check; return one line per failure."""
        with self._lock:
            frames, self.frames = self.frames, []
        failures: list[str] = []
        for dialect, text in frames:
            obj = orjson.loads(text)
            try:
                validate(dialect, obj)
            except ValidationError as exc:
                first = exc.errors()[0]
                failures.append(f"{dialect} {obj.get('type')}: {first['loc']} {first['msg']}")
                continue
            self.seen[(dialect, obj["type"])] += 1
        return failures
