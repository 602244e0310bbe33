"""Turn and error counts per target: fed live by the running sessions (the progress display,
abort-on-fail) or rebuilt from a saved run's tables (the gate), so both judge the same counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True, slots=True)
class TargetInfo:
    name: str
    region: str
    model: str
    sessions: int                            # planned
    effort: str = ""                         # reasoning.effort its sessions ask for ("": none)

    def matches(self, filters: Mapping[str, str]) -> bool:
        labels = {"region": self.region, "model": self.model, "target": self.name,
                  "effort": self.effort}
        return all(labels[k] == v for k, v in filters.items())


@dataclass(slots=True)
class TargetTally:
    turns_ok: int = 0
    turns_failed: int = 0
    turns_unattempted: int = 0               # planned turns known never to happen
    turns_premature: int = 0                 # answered before the user finished (T_eos)
    sessions_with_errors: set[int] = field(default_factory=set)
    errors: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (phase, kind, code)


class Tally:
    """Turn and error counts per target: fed live by the run, or built from a saved run."""

    def __init__(self) -> None:
        self.targets: dict[str, TargetTally] = {}

    def of(self, target: str) -> TargetTally:
        found = self.targets.get(target)
        if found is None:
            found = self.targets[target] = TargetTally()
        return found

    def add_turn(self, target: str, status: str, premature: bool = False) -> None:
        t = self.of(target)
        t.turns_premature += premature
        if status == "ok":
            t.turns_ok += 1
        else:
            t.turns_failed += 1

    def add_error(self, target: str, session_idx: int, phase: str, kind: str,
                  code: str | None) -> None:
        t = self.of(target)
        t.sessions_with_errors.add(session_idx)
        t.errors[(phase, kind, "-" if code is None else code)] += 1

    def session_finished(self, target: str, turns_attempted: int, turns_per_session: int) -> None:
        self.of(target).turns_unattempted += max(0, turns_per_session - turns_attempted)

    @classmethod
    def from_tables(cls, turns: pd.DataFrame, errors: pd.DataFrame,
                    targets: Sequence[TargetInfo], turns_per_session: int,
                    not_run: Mapping[str, int] | None = None) -> Tally:
        """``not_run``: per target, planned turns that never started because the run stopped
        first (see :func:`not_run_turns`); they are not unattempted failures."""
        tally = cls()
        premature = (turns["premature"].fillna(False).astype(bool) if "premature" in turns
                     else pd.Series(False, index=turns.index))
        for target, status, early in zip(turns["target"], turns["status"], premature,
                                         strict=True):
            tally.add_turn(str(target), str(status), bool(early))
        for row in errors.to_dict("records"):
            code = row["code"]
            tally.add_error(str(row["target"]), int(row["session_idx"]), str(row["phase"]),
                            str(row["kind"]), None if code is None or code != code else str(code))
        for info in targets:
            t = tally.of(info.name)
            t.turns_unattempted = max(
                0, info.sessions * turns_per_session - t.turns_ok - t.turns_failed
                - (not_run or {}).get(info.name, 0))
        return tally


def not_run_turns(sessions: pd.DataFrame, targets: Sequence[TargetInfo], turns_per_session: int,
                  stopped: bool) -> dict[str, int]:
    """Per target, the planned turns a stopped run never started: the rest of each session
    marked ``stopped`` and, when the run stopped, the turns of planned sessions that never
    began. A session that failed keeps its unplayed turns as failures."""
    out: dict[str, int] = {}
    if "status" not in sessions:
        return out
    final = sessions[(sessions["status"] != "dropped") & ~sessions["retried"].astype(bool)]
    for info in targets:
        mine = final[final["target"] == info.name]
        cut = mine[mine["status"] == "stopped"]
        n = int((turns_per_session - cut["turns_ok"] - cut["turns_failed"]).clip(lower=0).sum())
        if stopped:
            n += max(0, info.sessions - len(mine)) * turns_per_session
        out[info.name] = n
    return out
