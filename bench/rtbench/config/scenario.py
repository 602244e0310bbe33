"""Scenario and target configuration: frozen dataclasses, loaded and validated once.

Every problem becomes a :class:`ConfigError` with one line naming the file, the key and what is
wrong, raised before any session starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol import Dialect, SessionConfig, TurnDetection
from ..protocol.audio import FRAME_MS
from ..protocol.session_config import DEFAULT_INSTRUCTIONS, TURN_DETECTION_TYPES
from .auth import HeaderSource


class ConfigError(Exception):
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
    session: SessionConfig = field(default_factory=SessionConfig)
    source: Path | None = None

    @property
    def turn_mode(self) -> str:
        """``manual`` (commit + response.create), ``server_vad`` or ``semantic_vad``."""
        td = self.session.turn_detection
        return "manual" if td is None else td.type


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
    model: str = "sim-realtime"
    provider: str = "simulator"
    headers: tuple[tuple[str, str], ...] = ()
    auth: HeaderSource | None = field(default=None, repr=False, compare=False)
    #: PEM file of the CA(s) that wss:// trusts instead of the system's (a private CA, the
    #: simulator's self-signed one). A path, not a context: targets are pickled to workers.
    ca_file: str | None = None


_SCENARIO_KEYS = {
    "name", "audio_dir", "utterances", "turns_per_session", "chunk_ms", "trailing_silence_ms",
    "think_time_ms", "turn_timeout_s", "connect_timeout_s", "barge_in_after_ms",
}
_SESSION_KEYS = {
    "voice", "instructions", "speed", "output_modalities", "transcription_model",
    "noise_reduction", "temperature", "max_output_tokens", "turn_detection",
}
_TD_KEYS = {
    "type", "threshold", "prefix_padding_ms", "silence_duration_ms", "eagerness",
    "create_response", "interrupt_response", "idle_timeout_ms",
}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, src: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{src}: unknown key {unknown[0]!r} in {where}")


def _typed(table: Mapping[str, Any], key: str, typ: type, default: Any, src: str, where: str) -> Any:
    if key not in table:
        return default
    value = table[key]
    ok = isinstance(value, typ) and not (typ in (int, float) and isinstance(value, bool))
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(
            f"{src}: {where}.{key} must be {typ.__name__}, got {type(value).__name__}")
    return value


def _session_from_table(table: Mapping[str, Any], src: str) -> SessionConfig:
    _check_keys(table, _SESSION_KEYS, "[session]", src)
    td_raw = table.get("turn_detection", {"type": "server_vad"})
    turn_detection: TurnDetection | None
    if td_raw == "none" or td_raw is False:
        turn_detection = None
    elif isinstance(td_raw, Mapping):
        _check_keys(td_raw, _TD_KEYS, "[session.turn_detection]", src)
        w = "session.turn_detection"
        kind = _typed(td_raw, "type", str, "server_vad", src, w)
        if kind not in TURN_DETECTION_TYPES:
            raise ConfigError(f"{src}: {w}.type must be one of {TURN_DETECTION_TYPES}, got {kind!r}")
        threshold = _typed(td_raw, "threshold", float, 0.5, src, w)
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"{src}: {w}.threshold must be within 0..1, got {threshold}")
        turn_detection = TurnDetection(
            type=kind,
            threshold=threshold,
            prefix_padding_ms=_typed(td_raw, "prefix_padding_ms", int, 300, src, w),
            silence_duration_ms=_typed(td_raw, "silence_duration_ms", int, 500, src, w),
            eagerness=_typed(td_raw, "eagerness", str, "auto", src, w),
            create_response=_typed(td_raw, "create_response", bool, True, src, w),
            interrupt_response=_typed(td_raw, "interrupt_response", bool, True, src, w),
        )
    else:
        raise ConfigError(f"{src}: session.turn_detection must be a table or \"none\"")
    mods = tuple(table.get("output_modalities", ["audio"]))
    if mods not in (("audio",), ("text",)):
        raise ConfigError(f"{src}: session.output_modalities must be [\"audio\"] or [\"text\"]")
    return SessionConfig(
        instructions=_typed(table, "instructions", str, DEFAULT_INSTRUCTIONS, src, "session"),
        voice=_typed(table, "voice", str, "alloy", src, "session"),
        speed=_typed(table, "speed", float, 1.0, src, "session"),
        output_modalities=mods,
        turn_detection=turn_detection,
        transcription_model=_typed(table, "transcription_model", str, None, src, "session"),
        noise_reduction=_typed(table, "noise_reduction", str, None, src, "session"),
        temperature=_typed(table, "temperature", float, 0.8, src, "session"),
    )


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing file or bad TOML is a one-line ConfigError."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario TOML file (``[scenario]`` and ``[session]`` tables)."""
    src = str(path)
    doc = read_toml(path, "scenario")
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
    chunk_ms = _typed(sc, "chunk_ms", int, 20, src, w)
    if chunk_ms <= 0 or chunk_ms % FRAME_MS:
        raise ConfigError(f"{src}: scenario.chunk_ms must be a positive multiple of {FRAME_MS}")
    turns = _typed(sc, "turns_per_session", int, 2, src, w)
    if turns < 1:
        raise ConfigError(f"{src}: scenario.turns_per_session must be at least 1")
    timeout = _typed(sc, "turn_timeout_s", float, 20.0, src, w)
    if timeout <= 0:
        raise ConfigError(f"{src}: scenario.turn_timeout_s must be positive")
    return Scenario(
        name=_typed(sc, "name", str, path.stem, src, w),
        audio_dir=audio_dir,
        utterances=tuple(utterances),
        turns_per_session=turns,
        chunk_ms=chunk_ms,
        trailing_silence_ms=_typed(sc, "trailing_silence_ms", int, 1000, src, w),
        think_time_ms=_typed(sc, "think_time_ms", int, 200, src, w),
        turn_timeout_s=timeout,
        connect_timeout_s=_typed(sc, "connect_timeout_s", float, 10.0, src, w),
        barge_in_after_ms=_typed(sc, "barge_in_after_ms", int, None, src, w),
        session=_session_from_table(doc.get("session", {}), src),
        source=path,
    )
