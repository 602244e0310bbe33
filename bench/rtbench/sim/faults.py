"""Fault plans as data, and the deterministic decisions taken from them. Sans-IO.

A plan is a list of rules; each names a fault ``kind`` and *when* it fires: with a
``probability`` per unit, on ``every`` Nth unit, or in the listed ``sessions`` (1-based
ordinals). The unit depends on the kind's scope (table :data:`SCOPES`): a connection for
handshake refusals, a session for session faults, a response for response faults. For a
response fault chosen by ``sessions``, ``response`` (default 1) says which response of the
session. Draws come from one RNG per rule seeded from the plan's seed, so a plan and a seed give
the same decisions for the same sequence of units, whatever else the simulator does.

Rules of this file: everything about a kind (scope, parameters and their defaults) is a table
entry; the :class:`Injector` only reads the tables. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..config.files import read_toml


class FaultPlanError(ValueError):
    """A fault plan that cannot be used; one line, names the rule and the key."""


class Scope(StrEnum):
    CONNECTION = "connection"  # decided at the WebSocket handshake
    SESSION = "session"        # decided once per accepted session
    RESPONSE = "response"      # decided each time a response starts


#: Every fault kind and its scope.
SCOPES: dict[str, Scope] = {
    "handshake_400": Scope.CONNECTION,
    "handshake_401": Scope.CONNECTION,
    "handshake_403": Scope.CONNECTION,
    "handshake_404": Scope.CONNECTION,
    "handshake_429": Scope.CONNECTION,
    "server_error_after_created": Scope.SESSION,
    "server_error_on_transcription": Scope.SESSION,
    "early_expiry": Scope.SESSION,
    "response_failed_server_error": Scope.RESPONSE,
    "response_failed_rate_limit": Scope.RESPONSE,
    "response_failed_insufficient_quota": Scope.RESPONSE,
    "response_failed_unavailable": Scope.RESPONSE,
    "tcp_drop": Scope.RESPONSE,
    "stall": Scope.RESPONSE,
    "malformed_json": Scope.RESPONSE,
    "slow_drip": Scope.RESPONSE,
    "text_only": Scope.RESPONSE,
}

#: Parameters a kind accepts, with defaults. ``after_deltas``: audio deltas sent before the
#: drop; ``realtime_factor``: pace of a slow drip (below 1 = slower than real time);
#: ``after_s``: session lifetime under early expiry.
PARAMS: dict[str, dict[str, float]] = {
    "tcp_drop": {"after_deltas": 1},
    "slow_drip": {"realtime_factor": 0.25},
    "early_expiry": {"after_s": 1.0},
}

_SELECTORS = ("probability", "every", "sessions", "response")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One line of a plan: a kind and when it fires."""

    kind: str
    probability: float | None = None
    every: int | None = None
    sessions: frozenset[int] = frozenset()
    response: int = 1
    params: Mapping[str, float] = field(default_factory=dict)

    @property
    def scope(self) -> Scope:
        return SCOPES[self.kind]

    def param(self, name: str) -> float:
        return float(self.params.get(name, PARAMS[self.kind][name]))


def rule_from_table(raw: Mapping[str, Any], where: str) -> FaultRule:
    """Validate one ``[[fault]]`` table (or a parsed ``--fault`` flag)."""
    kind = raw.get("kind")
    if kind not in SCOPES:
        raise FaultPlanError(f"{where}: unknown fault kind {kind!r}; known: {', '.join(SCOPES)}")
    allowed = set(_SELECTORS) | set(PARAMS.get(kind, {})) | {"kind"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise FaultPlanError(f"{where}: unknown key {unknown[0]!r} for fault {kind}")
    prob = raw.get("probability")
    every = raw.get("every")
    sessions = raw.get("sessions", [])
    if prob is None and every is None and not sessions:
        raise FaultPlanError(f"{where}: fault {kind} needs probability, every or sessions")
    if prob is not None and (isinstance(prob, bool) or not isinstance(prob, int | float)
                             or not 0.0 <= prob <= 1.0):
        raise FaultPlanError(f"{where}: probability must be a number within 0..1, got {prob!r}")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise FaultPlanError(f"{where}: every must be a positive integer, got {every!r}")
    if not isinstance(sessions, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sessions):
        raise FaultPlanError(f"{where}: sessions must be a list of positive integers")
    response = raw.get("response", 1)
    if isinstance(response, bool) or not isinstance(response, int) or response < 1:
        raise FaultPlanError(f"{where}: response must be a positive integer, got {response!r}")
    params: dict[str, float] = {}
    for name in PARAMS.get(kind, {}):
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultPlanError(f"{where}: {name} must be a non-negative number")
            params[name] = float(value)
    return FaultRule(kind=kind, probability=None if prob is None else float(prob), every=every,
                     sessions=frozenset(sessions), response=response, params=params)


def rule_from_flag(text: str) -> FaultRule:
    """``KIND=SELECTOR[,name=value...]``: ``0.1`` (probability), ``every:5``, ``sessions:1+3``.

    Examples: ``server_error_after_created=0.1``, ``tcp_drop=every:4,after_deltas=2``.
    """
    where = f"--fault {text}"
    kind, sep, rest = text.partition("=")
    if not sep or not rest:
        raise FaultPlanError(f"{where}: expected KIND=PROBABILITY or KIND=every:N or "
                             "KIND=sessions:A+B")
    selector, *extra = rest.split(",")
    raw: dict[str, Any] = {"kind": kind.strip()}
    try:
        if selector.startswith("every:"):
            raw["every"] = int(selector.removeprefix("every:"))
        elif selector.startswith("sessions:"):
            raw["sessions"] = [int(s) for s in selector.removeprefix("sessions:").split("+")]
        else:
            raw["probability"] = float(selector)
        for item in extra:
            name, _, value = item.partition("=")
            raw[name.strip()] = float(value) if name.strip() != "response" else int(value)
    except ValueError:
        raise FaultPlanError(f"{where}: cannot parse {rest!r}") from None
    return rule_from_table(raw, where)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The rules, in order (first matching response rule wins), and the seed of their RNGs."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    def __bool__(self) -> bool:
        return bool(self.rules)


def plan_from_document(doc: Mapping[str, Any], src: str) -> FaultPlan:
    """The plan in a parsed TOML document: optional ``seed`` and ``[[fault]]`` tables."""
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise FaultPlanError(f"{src}: seed must be an integer")
    faults = doc.get("fault", [])
    if not isinstance(faults, list):
        raise FaultPlanError(f"{src}: 'fault' must be an array of tables ([[fault]])")
    rules = tuple(rule_from_table(t, f"{src}: fault #{i + 1}") for i, t in enumerate(faults))
    return FaultPlan(rules, seed)


def load_document(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; FaultPlanError with one line if it cannot be read."""
    return read_toml(path, "fault plan", FaultPlanError)


def load_plan(path: Path) -> FaultPlan:
    return plan_from_document(load_document(path), str(path))


class Injector:
    """Takes the plan's decisions unit by unit; one seeded RNG per rule.

    Ordinals are 1-based and counted here, so callers only say "a new connection / session /
    response has begun". What was *applied* is counted by the caller (the server), because a
    decided fault can be overtaken (a response cancelled before its drop was due).
    """

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rngs = [random.Random(f"{plan.seed}/{i}/{r.kind}") for i, r in enumerate(plan.rules)]
        self._counts = {scope: 0 for scope in Scope}

    def _fires(self, index: int, rule: FaultRule, ordinal: int, session: int,
               response_in_session: int | None) -> bool:
        if rule.sessions and session in rule.sessions and (
                response_in_session is None or response_in_session == rule.response):
            return True
        if rule.every is not None and ordinal % rule.every == 0:
            return True
        return rule.probability is not None and self._rngs[index].random() < rule.probability

    def _decide(self, scope: Scope, session: int, response_in_session: int | None = None
                ) -> list[FaultRule]:
        self._counts[scope] += 1
        ordinal = self._counts[scope]
        return [r for i, r in enumerate(self.plan.rules)
                if r.scope is scope and self._fires(i, r, ordinal, session, response_in_session)]

    def on_connection(self) -> FaultRule | None:
        """The handshake refusal for the next connection, if any (first matching rule)."""
        n = self._counts[Scope.CONNECTION] + 1
        found = self._decide(Scope.CONNECTION, n)
        return found[0] if found else None

    def on_session(self, session: int) -> list[FaultRule]:
        """Session faults for accepted session number ``session`` (all that fire)."""
        return self._decide(Scope.SESSION, session)

    def on_response(self, session: int, response_in_session: int) -> FaultRule | None:
        """The fault for a response starting now, if any (first matching rule)."""
        found = self._decide(Scope.RESPONSE, session, response_in_session)
        return found[0] if found else None


def describe(plan: FaultPlan) -> list[dict[str, Any]]:
    """The plan as JSON-ready rows (for the stats file and run manifests)."""
    rows: list[dict[str, Any]] = []
    for r in plan.rules:
        row: dict[str, Any] = {"kind": r.kind}
        if r.probability is not None:
            row["probability"] = r.probability
        if r.every is not None:
            row["every"] = r.every
        if r.sessions:
            row["sessions"] = sorted(r.sessions)
            if r.scope is Scope.RESPONSE:
                row["response"] = r.response
        row.update(r.params)
        rows.append(row)
    return rows


def merge(plan: FaultPlan, extra: Sequence[FaultRule]) -> FaultPlan:
    """``plan`` with flag rules appended (flags come after the file's rules)."""
    return FaultPlan(plan.rules + tuple(extra), plan.seed)
