"""Scenario and target configuration: frozen dataclasses, loaded and validated once.

Every problem becomes a :class:`ConfigError` with one line naming the file, the key and what is
wrong, raised before any session starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..process.errors import UserError
from ..protocol import Dialect, SessionConfig, TurnDetection
from ..protocol.audio import AUDIBLE_THRESHOLD, FRAME_MS
from ..protocol.models import SIMULATOR_LABEL
from ..protocol.session_config import (
    DEFAULT_INSTRUCTIONS,
    EAGERNESS_VALUES,
    NOISE_REDUCTION_TYPES,
    REASONING_EFFORTS,
    TURN_DETECTION_TYPES,
)
from .auth import HeaderSource
from .files import read_toml


class ConfigError(UserError):
    """A configuration problem, one line, safe to print (never contains secrets)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """What each session does: which utterances, how many turns, how audio is paced."""

    name: str
    audio_dir: Path
    utterances: tuple[str, ...]
    turns_per_session: int = 2
    chunk_ms: int = 20
    trailing_silence_ms: int = 1000
    think_time_ms: int = 200
    turn_timeout_s: float = 20.0
    connect_timeout_s: float = 10.0
    barge_in_after_ms: int | None = None  # speak again this long after the first audio delta
    #: Level (VAD 0..1 scale) above which a 10 ms window of output audio is audible (ttfa_ms).
    audible_threshold: float = AUDIBLE_THRESHOLD
    session: SessionConfig = field(default_factory=SessionConfig)
    source: Path | None = None

    @property
    def turn_mode(self) -> str:
        """``manual`` (commit + response.create), ``server_vad`` or ``semantic_vad``."""
        td = self.session.turn_detection
        return "manual" if td is None else td.type

    def session_for(self, target: Target) -> SessionConfig:
        """The session ``target``'s sessions configure: the scenario's, with the target's
        reasoning effort over it. A field the target's protocol generation does not have is a
        ConfigError naming it (reasoning, noise-reduction strength and the idle timeout exist
        in GA only: protocol reference §2.1, §3.4, §10.2, §10.4), raised before any session."""
        cfg = self.session
        if target.reasoning_effort is not None:
            cfg = replace(cfg, reasoning_effort=target.reasoning_effort)
        if target.dialect is Dialect.BETA:
            td = cfg.turn_detection
            ga_only = [name for name, value in (
                ("reasoning.effort", cfg.reasoning_effort),
                ("noise_reduction.strength", cfg.noise_reduction_strength),
                ("turn_detection.idle_timeout_ms", None if td is None else td.idle_timeout_ms),
            ) if value is not None]
            if ga_only:
                raise ConfigError(f"target {target.name}: session.{ga_only[0]} exists only in "
                                  "the GA protocol, and this target speaks beta (Azure preview)")
        return cfg


@dataclass(frozen=True, slots=True)
class Target:
    """Where sessions go. Labels (region, model) tag every row and group the summary.

    ``headers`` are plain, non-secret headers; credentials come from ``auth`` at connect time
    (fresh tokens on long runs, and no secret in a Target's repr or the manifest).
    """

    name: str
    url: str
    dialect: Dialect = Dialect.GA
    region: str = "local"
    model: str = SIMULATOR_LABEL
    provider: str = "simulator"
    headers: tuple[tuple[str, str], ...] = ()
    auth: HeaderSource | None = field(default=None, repr=False, compare=False)
    #: PEM file of the CA(s) that wss:// trusts instead of the system's (a private CA, the
    #: simulator's self-signed one). A path, not a context: targets are pickled to workers.
    ca_file: str | None = None
    #: The ``http://`` proxy the connection tunnels through with CONNECT, credentials included
    #: (None: direct). Chosen when the target is built (:mod:`rtbench.config.proxies`), so every
    #: session, worker and the manifest agree.
    proxy: str | None = field(default=None, repr=False)
    #: ``reasoning.effort`` this target's sessions ask for, over the scenario's (§10.2).
    reasoning_effort: str | None = None


#: A silence window beyond a minute never ends a spoken turn; the bound also keeps absurd values
#: (10**30) out of the wire message.
MAX_SILENCE_MS = 60_000

_SCENARIO_KEYS = {
    "name", "audio_dir", "utterances", "turns_per_session", "chunk_ms", "trailing_silence_ms",
    "think_time_ms", "turn_timeout_s", "connect_timeout_s", "barge_in_after_ms",
    "audible_threshold",
}
_SESSION_KEYS = {
    "voice", "instructions", "speed", "output_modalities", "transcription_model",
    "noise_reduction", "temperature", "max_output_tokens", "turn_detection", "reasoning",
}
_NOISE_KEYS = {"type", "strength"}
_REASONING_KEYS = {"effort"}
#: The longest idle timeout accepted (an hour, as the wire layer's bound).
MAX_IDLE_TIMEOUT_MS = 3_600_000
_TD_KEYS = {
    "type", "threshold", "prefix_padding_ms", "silence_duration_ms", "eagerness",
    "create_response", "interrupt_response", "idle_timeout_ms",
}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, src: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{src}: unknown key {unknown[0]!r} in {where}")


def _bound(value: float) -> str:
    """A limit as written in a file: 3600000, not 3.6e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _typed(table: Mapping[str, Any], key: str, typ: type, default: Any, src: str, where: str,
           *, low: float | None = None, high: float | None = None, above: float | None = None,
           choices: Sequence[str] | None = None) -> Any:
    """``table[key]`` checked: its type, a finite number, within ``low``..``high`` (or strictly
    above ``above``), one of ``choices``; each failure one line naming the key and the rule."""
    if key not in table:
        return default
    value = table[key]
    name = f"{src}: {where}.{key}"
    ok = isinstance(value, typ) and not (typ in (int, float) and isinstance(value, bool))
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{name} must be {typ.__name__}, got {type(value).__name__}")
    if typ in (int, float):
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                span = f"within {_bound(low)}..{_bound(high)}"
            elif low is not None:
                span = f"at least {_bound(low)}"
            else:
                assert high is not None
                span = f"at most {_bound(high)}"
            raise ConfigError(f"{name} must be {span}, got {value:g}")
        if above is not None and value <= above:
            raise ConfigError(f"{name} must be greater than {above:g}, got {value:g}")
    if choices is not None and value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _max_output_tokens(table: Mapping[str, Any], src: str) -> int | str:
    """``max_output_tokens``: 1..4096 or "inf" (protocol reference: session.max_output_tokens)."""
    value = table.get("max_output_tokens", "inf")
    if value == "inf":
        return "inf"
    return int(_typed(table, "max_output_tokens", int, None, src, "session", low=1, high=4096))


def _noise_reduction(table: Mapping[str, Any], src: str) -> tuple[str | None, float | None]:
    """``noise_reduction = "near_field"`` or ``[session.noise_reduction]`` with ``type`` and
    ``strength`` (the wire shape ``audio.input.noise_reduction``, §10.4): (type, strength)."""
    raw = table.get("noise_reduction")
    if raw is None or isinstance(raw, str):
        kind = _typed(table, "noise_reduction", str, None, src, "session",
                      choices=NOISE_REDUCTION_TYPES)
        return kind, None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{src}: session.noise_reduction must be a type name or a table")
    _check_keys(raw, _NOISE_KEYS, "[session.noise_reduction]", src)
    w = "session.noise_reduction"
    kind = _typed(raw, "type", str, NOISE_REDUCTION_TYPES[0], src, w,
                  choices=NOISE_REDUCTION_TYPES)
    return kind, _typed(raw, "strength", float, None, src, w, low=0.0)


def reasoning_effort(raw: object, where: str) -> str | None:
    """``reasoning = { effort = "low" }`` (the wire shape ``session.reasoning.effort``, §10.2)
    at ``where`` (file and key, as error lines name it), checked: the effort, or None."""
    if raw is None:
        return None
    choices = ", ".join(map(repr, REASONING_EFFORTS))
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table: {{ effort = one of {choices} }}")
    unknown = sorted(set(raw) - _REASONING_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (expected effort)")
    effort = raw.get("effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise ConfigError(f"{where}.effort must be one of {choices}, got {effort!r}")
    return None if effort is None else str(effort)


def _session_from_table(table: Mapping[str, Any], src: str) -> SessionConfig:
    _check_keys(table, _SESSION_KEYS, "[session]", src)
    td_raw = table.get("turn_detection", {"type": "server_vad"})
    turn_detection: TurnDetection | None
    if td_raw == "none" or td_raw is False:
        turn_detection = None
    elif isinstance(td_raw, Mapping):
        _check_keys(td_raw, _TD_KEYS, "[session.turn_detection]", src)
        w = "session.turn_detection"
        turn_detection = TurnDetection(
            type=_typed(td_raw, "type", str, "server_vad", src, w, choices=TURN_DETECTION_TYPES),
            threshold=_typed(td_raw, "threshold", float, 0.5, src, w, low=0.0, high=1.0),
            prefix_padding_ms=_typed(td_raw, "prefix_padding_ms", int, 300, src, w, low=0),
            silence_duration_ms=_typed(td_raw, "silence_duration_ms", int, 500, src, w, low=0,
                                       high=MAX_SILENCE_MS),
            eagerness=_typed(td_raw, "eagerness", str, "auto", src, w, choices=EAGERNESS_VALUES),
            create_response=_typed(td_raw, "create_response", bool, True, src, w),
            interrupt_response=_typed(td_raw, "interrupt_response", bool, True, src, w),
            idle_timeout_ms=_typed(td_raw, "idle_timeout_ms", int, None, src, w, low=0,
                                   high=MAX_IDLE_TIMEOUT_MS),
        )
        if turn_detection.idle_timeout_ms is not None and turn_detection.type != "server_vad":
            raise ConfigError(f"{src}: session.turn_detection.idle_timeout_ms is for type "
                              "\"server_vad\" only (protocol reference §3.4)")
    else:
        raise ConfigError(f"{src}: session.turn_detection must be a table or \"none\"")
    raw_mods = table.get("output_modalities", ["audio"])
    mods = tuple(raw_mods) if isinstance(raw_mods, list) else ()
    if mods not in (("audio",), ("text",)):
        raise ConfigError(f"{src}: session.output_modalities must be [\"audio\"] or [\"text\"]")
    noise, strength = _noise_reduction(table, src)
    return SessionConfig(
        instructions=_typed(table, "instructions", str, DEFAULT_INSTRUCTIONS, src, "session"),
        voice=_typed(table, "voice", str, "alloy", src, "session"),
        speed=_typed(table, "speed", float, 1.0, src, "session", low=0.25, high=1.5),
        output_modalities=mods,
        turn_detection=turn_detection,
        transcription_model=_typed(table, "transcription_model", str, None, src, "session"),
        noise_reduction=noise,
        noise_reduction_strength=strength,
        reasoning_effort=reasoning_effort(table.get("reasoning"), f"{src}: session.reasoning"),
        temperature=_typed(table, "temperature", float, 0.8, src, "session", low=0.0, high=2.0),
        max_output_tokens=_max_output_tokens(table, src),
    )


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario TOML file (``[scenario]`` and ``[session]`` tables)."""
    src = str(path)
    doc = read_toml(path, "scenario", ConfigError)
    _check_keys(doc, {"scenario", "session", "budgets"}, "the top level", src)
    sc = doc.get("scenario", {})
    _check_keys(sc, _SCENARIO_KEYS, "[scenario]", src)
    w = "scenario"
    audio_dir = Path(_typed(sc, "audio_dir", str, "audio", src, w))
    if not audio_dir.is_absolute():
        audio_dir = path.parent / audio_dir
    utterances = _typed(sc, "utterances", list, [], src, w)
    if not utterances or not all(isinstance(u, str) for u in utterances):
        raise ConfigError(f"{src}: scenario.utterances must be a non-empty list of file names")
    chunk_ms = _typed(sc, "chunk_ms", int, 20, src, w, low=FRAME_MS)
    if chunk_ms % FRAME_MS:
        raise ConfigError(f"{src}: scenario.chunk_ms must be a positive multiple of {FRAME_MS}")
    return Scenario(
        name=_typed(sc, "name", str, path.stem, src, w),
        audio_dir=audio_dir,
        utterances=tuple(utterances),
        turns_per_session=_typed(sc, "turns_per_session", int, 2, src, w, low=1),
        chunk_ms=chunk_ms,
        trailing_silence_ms=_typed(sc, "trailing_silence_ms", int, 1000, src, w, low=0),
        think_time_ms=_typed(sc, "think_time_ms", int, 200, src, w, low=0),
        turn_timeout_s=_typed(sc, "turn_timeout_s", float, 20.0, src, w, above=0),
        connect_timeout_s=_typed(sc, "connect_timeout_s", float, 10.0, src, w, above=0),
        barge_in_after_ms=_typed(sc, "barge_in_after_ms", int, None, src, w, low=0),
        audible_threshold=_typed(sc, "audible_threshold", float, AUDIBLE_THRESHOLD, src, w,
                                 low=0.0, high=1.0),
        session=_session_from_table(doc.get("session", {}), src),
        source=path,
    )
