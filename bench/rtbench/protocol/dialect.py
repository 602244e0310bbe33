"""GA vs beta wire generations: event names and session shapes, as tables.

Rules of this file: everything that differs between the generations is data here (the rename
table, the keys each generation owns); functions only read the tables. Canonical names are GA.
A canonical event with no beta counterpart (``conversation.item.done``) maps to ``None`` and is
simply not sent on a beta connection.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .events import EventType
from .session_config import (
    AUDIO_FORMATS_GA,
    EAGERNESS_VALUES,
    GA_FORMAT_TYPES,
    NOISE_REDUCTION_TYPES,
    REASONING_EFFORTS,
    TURN_DETECTION_TYPES,
    SessionConfig,
    TurnDetection,
)


class Dialect(StrEnum):
    GA = "ga"
    BETA = "beta"


#: beta wire name -> canonical (GA) name, for every event whose name differs.
BETA_TO_GA: dict[str, str] = {
    "response.audio.delta": EventType.AUDIO_DELTA,
    "response.audio.done": EventType.AUDIO_DONE,
    "response.audio_transcript.delta": EventType.AUDIO_TRANSCRIPT_DELTA,
    "response.audio_transcript.done": EventType.AUDIO_TRANSCRIPT_DONE,
    "response.text.delta": EventType.TEXT_DELTA,
    "response.text.done": EventType.TEXT_DONE,
    "conversation.item.created": EventType.ITEM_ADDED,
}
GA_TO_BETA: dict[str, str | None] = {ga: beta for beta, ga in BETA_TO_GA.items()}
GA_TO_BETA[EventType.ITEM_DONE] = None  # beta has one `created` where GA has `added` + `done`
#: Events that exist only in beta; a GA encoder refuses them.
BETA_ONLY: frozenset[str] = frozenset({EventType.CONVERSATION_CREATED})


def canonical_name(wire_type: str, dialect: Dialect) -> str:
    """The canonical name of an event type as received on a connection of ``dialect``."""
    if dialect is Dialect.BETA:
        return BETA_TO_GA.get(wire_type, wire_type)
    return wire_type


def wire_name(canonical: str, dialect: Dialect) -> str | None:
    """The name to send on ``dialect`` for a canonical event, or None when it does not exist."""
    if dialect is Dialect.BETA:
        return GA_TO_BETA.get(canonical, canonical)
    if canonical in BETA_ONLY:
        return None
    return canonical


# ---------------------------------------------------------------------------------------------
# Session shapes
# ---------------------------------------------------------------------------------------------

#: Top-level ``session`` keys that belong to one generation only (used to reject the other's).
GA_ONLY_SESSION_KEYS = ("type", "audio", "output_modalities", "max_output_tokens", "truncation",
                        "reasoning")
BETA_ONLY_SESSION_KEYS = (
    "modalities",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "turn_detection",
    "temperature",
    "max_response_output_tokens",
    "speed",
)


@dataclass(frozen=True, slots=True)
class SessionUpdateRejected(Exception):
    """A ``session.update`` the server must refuse; carries the ``error`` event fields."""

    code: str
    param: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def session_to_wire(cfg: SessionConfig, dialect: Dialect) -> dict[str, Any]:
    """The ``session`` object for ``session.update`` (client) or the body of created/updated."""
    td = None if cfg.turn_detection is None else cfg.turn_detection.as_wire()
    transcription = (
        None if cfg.transcription_model is None else {"model": cfg.transcription_model}
    )
    noise: dict[str, Any] | None = None
    if cfg.noise_reduction is not None:
        noise = {"type": cfg.noise_reduction}
    if dialect is Dialect.GA:
        session: dict[str, Any] = {"type": "realtime"}
        if cfg.model is not None:
            session["model"] = cfg.model
        if noise is not None and cfg.noise_reduction_strength is not None:
            noise["strength"] = cfg.noise_reduction_strength  # GA only (§10.4)
        session.update(
            {
                "output_modalities": list(cfg.output_modalities),
                "instructions": cfg.instructions,
                "audio": {
                    "input": {
                        "format": dict(AUDIO_FORMATS_GA[cfg.input_format]),
                        "transcription": transcription,
                        "noise_reduction": noise,
                        "turn_detection": td,
                    },
                    "output": {
                        "format": dict(AUDIO_FORMATS_GA[cfg.output_format]),
                        "voice": cfg.voice,
                        "speed": cfg.speed,
                    },
                },
                "tools": list(cfg.tools),
                "tool_choice": cfg.tool_choice,
                "max_output_tokens": cfg.max_output_tokens,
            }
        )
        if cfg.reasoning_effort is not None:  # only when set: models without it reject it
            session["reasoning"] = {"effort": cfg.reasoning_effort}
        return session
    modalities = ["text"] if cfg.output_modalities == ("text",) else ["audio", "text"]
    session = {} if cfg.model is None else {"model": cfg.model}
    session.update(
        {
            "modalities": modalities,
            "instructions": cfg.instructions,
            "voice": cfg.voice,
            "input_audio_format": cfg.input_format,
            "output_audio_format": cfg.output_format,
            "input_audio_transcription": transcription,
            "input_audio_noise_reduction": noise,
            "turn_detection": td,
            "tools": list(cfg.tools),
            "tool_choice": cfg.tool_choice,
            "temperature": cfg.temperature,
            "max_response_output_tokens": cfg.max_output_tokens,
            "speed": cfg.speed,
        }
    )
    return session


def _reject(code: str, param: str, message: str) -> SessionUpdateRejected:
    return SessionUpdateRejected(code=code, param=param, message=message)


def _unknown(param: str) -> SessionUpdateRejected:
    return _reject("unknown_parameter", param, f"Unknown parameter: '{param}'.")


def _turn_detection_from_wire(raw: object, param: str) -> TurnDetection | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _reject("invalid_type", param, f"Invalid type for '{param}': expected an object.")
    kind = raw.get("type", "server_vad")
    if not _one_of(kind, TURN_DETECTION_TYPES):
        raise _reject(
            "invalid_value",
            f"{param}.type",
            f"Invalid value: '{kind}'. Supported values are: 'server_vad' and 'semantic_vad'.",
        )
    # Partially specified objects get the documented defaults, not the session's (ref §5.5.6).
    td = TurnDetection(type=str(kind))
    fields: dict[str, Any] = {}
    for name, typ in (
        ("threshold", float),
        ("prefix_padding_ms", int),
        ("silence_duration_ms", int),
        ("create_response", bool),
        ("interrupt_response", bool),
    ):
        if name in raw and raw[name] is not None:
            value = raw[name]
            if typ is bool and not isinstance(value, bool):
                raise _reject("invalid_type", f"{param}.{name}", f"Invalid type for '{param}.{name}'.")
            if typ is not bool and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise _reject("invalid_type", f"{param}.{name}", f"Invalid type for '{param}.{name}'.")
            if typ is not bool and not 0 <= value <= (1 if name == "threshold" else MAX_MS):
                raise _reject("invalid_value", f"{param}.{name}",
                              f"Invalid value for '{param}.{name}'.")
            fields[name] = typ(value)
    if "idle_timeout_ms" in raw:
        value = raw["idle_timeout_ms"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_MS):
            raise _reject("invalid_value", f"{param}.idle_timeout_ms",
                          f"Invalid value for '{param}.idle_timeout_ms'.")
        fields["idle_timeout_ms"] = value
    if "eagerness" in raw:
        if not _one_of(raw["eagerness"], EAGERNESS_VALUES):
            raise _reject("invalid_value", f"{param}.eagerness",
                          f"Invalid value: '{raw['eagerness']}'.")
        fields["eagerness"] = raw["eagerness"]
    threshold = fields.get("threshold", td.threshold)
    if not 0.0 <= threshold <= 1.0:
        raise _reject("decimal_above_max_value", f"{param}.threshold",
                      f"Invalid '{param}.threshold': must be between 0 and 1.")
    return replace(td, **fields)


def _format_from_ga(raw: object, param: str) -> str:
    if not isinstance(raw, Mapping) or not _one_of(raw.get("type"), GA_FORMAT_TYPES):
        raise _reject("invalid_value", f"{param}.type", f"Invalid value for '{param}.type'.")
    return GA_FORMAT_TYPES[str(raw["type"])]


def _optional_name(obj: Mapping[str, Any], key: str, field: str, attr: str,
                   changes: dict[str, Any]) -> None:
    """``{key: {field: name}}`` or ``{key: null}`` (clears it) into ``changes[attr]``."""
    if key in obj:
        value = obj[key]
        if value is not None and not isinstance(value, Mapping):
            raise _reject("invalid_type", f"session.{key}", f"Invalid type for 'session.{key}'.")
        changes[attr] = None if value is None else str(value.get(field))


def _noise_reduction(obj: Mapping[str, Any], key: str, param: str, base: SessionConfig,
                     changes: dict[str, Any], *, strength: bool) -> None:
    """``{key: {type, strength?}}`` or ``{key: null}`` (noise reduction off) into ``changes``.

    ``strength`` (GA only, §10.4): a non-negative number; omitted, the current strength is kept,
    and noise reduction enabled for the first time starts at 1, as the SDK docstring says. A
    missing ``type`` keeps the current one (``near_field`` when it was off; UNCERTAIN: no
    capture of the service's answer to a type-less object)."""
    if key not in obj:
        return
    value = obj[key]
    if value is None:
        changes["noise_reduction"] = changes["noise_reduction_strength"] = None
        return
    if not isinstance(value, Mapping):
        raise _reject("invalid_type", param, f"Invalid type for '{param}'.")
    for name in value:
        if name not in ("type", "strength") or (name == "strength" and not strength):
            raise _unknown(f"{param}.{name}")
    kind = value.get("type")
    if kind is not None and not _one_of(kind, NOISE_REDUCTION_TYPES):
        raise _reject("invalid_value", f"{param}.type",
                      f"Invalid value: '{kind}'. Supported values are: 'near_field' and "
                      "'far_field'.")
    changes["noise_reduction"] = kind or base.noise_reduction or NOISE_REDUCTION_TYPES[0]
    if strength:
        level = value.get("strength")
        if level is not None:
            level = _checked(value, "strength", (int, float), f"{param}.strength")
            if level < 0:
                raise _reject("invalid_value", f"{param}.strength",
                              f"Invalid value for '{param}.strength': must be at least 0.")
            changes["noise_reduction_strength"] = float(level)
        elif base.noise_reduction is None or base.noise_reduction_strength is None:
            changes["noise_reduction_strength"] = 1.0


def _reasoning(raw: Mapping[str, Any], param: str, changes: dict[str, Any]) -> None:
    """``reasoning: {effort}`` (GA reasoning models, §10.2): null clears it, an object without
    ``effort`` keeps the current one."""
    if "reasoning" not in raw:
        return
    value = raw["reasoning"]
    if value is None:
        changes["reasoning_effort"] = None
        return
    if not isinstance(value, Mapping):
        raise _reject("invalid_type", param, f"Invalid type for '{param}': expected an object.")
    for name in value:
        if name != "effort":
            raise _unknown(f"{param}.{name}")
    if "effort" in value:
        effort = value["effort"]
        if effort is not None and not _one_of(effort, REASONING_EFFORTS):
            raise _reject("invalid_value", f"{param}.effort",
                          f"Invalid value: '{effort}'. Supported values are: "
                          + ", ".join(f"'{e}'" for e in REASONING_EFFORTS) + ".")
        changes["reasoning_effort"] = effort


#: The largest millisecond value a client may set (an hour): beyond it the reply's integers
#: would not even encode (a silence_duration_ms of 1e300 once took the simulator down).
MAX_MS = 3_600_000


def _one_of(value: object, allowed: Collection[str]) -> bool:
    """``value`` is one of the allowed names (a list or a number is not, nor is it hashed)."""
    return isinstance(value, str) and value in allowed


def _max_tokens(value: object, param: str) -> int | str:
    if value == "inf" or (isinstance(value, int) and not isinstance(value, bool)
                          and 1 <= value <= 4096):
        return value  # type: ignore[return-value]
    raise _reject("invalid_value", param, f"Invalid value for '{param}'.")


def _checked(table: Mapping[str, Any], key: str, kinds: type | tuple[type, ...],
             param: str) -> Any:
    """``table[key]`` if it has one of ``kinds`` (a bool is no number), else the service's
    ``invalid_type`` rejection naming ``param``."""
    value = table[key]
    numeric = kinds is int or (isinstance(kinds, tuple) and int in kinds)
    if not isinstance(value, kinds) or (numeric and isinstance(value, bool)):
        raise _reject("invalid_type", param, f"Invalid type for '{param}'.")
    if isinstance(value, float) and not math.isfinite(value):
        raise _reject("invalid_value", param, f"Invalid value for '{param}'.")
    return value


def session_from_wire(
    raw: object, dialect: Dialect, base: SessionConfig, *, require_type: bool = True
) -> SessionConfig:
    """Apply a client's partial ``session`` object to ``base`` as the real server would.

    Raises :class:`SessionUpdateRejected` for what the services reject: a GA update without
    ``session.type``, the other generation's fields, wrong types or values.
    """
    if not isinstance(raw, Mapping):
        raise _reject("invalid_type", "session", "Invalid type for 'session': expected an object.")
    changes: dict[str, Any] = {}
    if dialect is Dialect.GA:
        for key in BETA_ONLY_SESSION_KEYS:
            if key in raw:
                raise _unknown(f"session.{key}")
        if "type" not in raw and require_type:
            raise _reject("missing_required_parameter", "session.type",
                          "Missing required parameter: 'session.type'.")
        if "type" in raw and raw["type"] != "realtime":
            raise _reject(
                "invalid_value",
                "session.type",
                f"Invalid value: '{raw['type']}'. Supported values are: 'realtime' and "
                "'transcription'.",
            )
        if "output_modalities" in raw:
            mods = raw["output_modalities"]
            if mods not in (["audio"], ["text"]):
                raise _reject("invalid_value", "session.output_modalities",
                              "Invalid value for 'session.output_modalities'.")
            changes["output_modalities"] = tuple(mods)
        if "max_output_tokens" in raw:
            changes["max_output_tokens"] = _max_tokens(raw["max_output_tokens"],
                                                       "session.max_output_tokens")
        audio = raw.get("audio") or {}
        if not isinstance(audio, Mapping):
            raise _reject("invalid_type", "session.audio", "Invalid type for 'session.audio'.")
        inp = audio.get("input") or {}
        out = audio.get("output") or {}
        for part, param in ((inp, "session.audio.input"), (out, "session.audio.output")):
            if not isinstance(part, Mapping):
                raise _reject("invalid_type", param, f"Invalid type for '{param}'.")
        if "format" in inp:
            changes["input_format"] = _format_from_ga(inp["format"], "session.audio.input.format")
        if "turn_detection" in inp:
            changes["turn_detection"] = _turn_detection_from_wire(
                inp["turn_detection"], "session.audio.input.turn_detection")
        _optional_name(inp, "transcription", "model", "transcription_model", changes)
        _noise_reduction(inp, "noise_reduction", "session.audio.input.noise_reduction", base,
                         changes, strength=True)
        _reasoning(raw, "session.reasoning", changes)
        if "format" in out:
            changes["output_format"] = _format_from_ga(out["format"], "session.audio.output.format")
        if "voice" in out:
            changes["voice"] = _checked(out, "voice", str, "session.audio.output.voice")
        if "speed" in out:
            changes["speed"] = float(_checked(out, "speed", (int, float),
                                              "session.audio.output.speed"))
    else:
        for key in GA_ONLY_SESSION_KEYS:
            if key in raw:
                raise _unknown(f"session.{key}")
        if "modalities" in raw:
            mods = raw["modalities"]
            if (not isinstance(mods, list) or not mods
                    or not all(m in ("audio", "text") for m in mods)):
                raise _reject("invalid_value", "session.modalities",
                              "Invalid value for 'session.modalities'.")
            changes["output_modalities"] = ("audio",) if "audio" in mods else ("text",)
        for key, attr in (("input_audio_format", "input_format"),
                          ("output_audio_format", "output_format")):
            if key in raw:
                if not _one_of(raw[key], AUDIO_FORMATS_GA):
                    raise _reject("invalid_value", f"session.{key}",
                                  f"Invalid value: '{raw[key]}'. Supported values are: 'pcm16', "
                                  "'g711_ulaw', and 'g711_alaw'.")
                changes[attr] = raw[key]
        if "turn_detection" in raw:
            changes["turn_detection"] = _turn_detection_from_wire(
                raw["turn_detection"], "session.turn_detection")
        _optional_name(raw, "input_audio_transcription", "model", "transcription_model", changes)
        _noise_reduction(raw, "input_audio_noise_reduction", "session.input_audio_noise_reduction",
                         base, changes, strength=False)
        for key, kinds in (("voice", str), ("temperature", (int, float)),
                           ("speed", (int, float))):
            if key in raw:
                changes[key] = _checked(raw, key, kinds, f"session.{key}")
        if "max_response_output_tokens" in raw:
            changes["max_output_tokens"] = _max_tokens(raw["max_response_output_tokens"],
                                                       "session.max_response_output_tokens")
    if "instructions" in raw:
        changes["instructions"] = _checked(raw, "instructions", str, "session.instructions")
    if "tools" in raw:
        changes["tools"] = tuple(_checked(raw, "tools", (list, type(None)), "session.tools") or ())
    if "tool_choice" in raw:
        changes["tool_choice"] = str(_checked(raw, "tool_choice", (str, dict),
                                              "session.tool_choice"))
    # ``session.model`` is accepted and ignored: the session keeps its model (ref §10.4;
    # clients send their own model string, which differs from an Azure deployment's name).
    return replace(base, **changes)
