"""Fold shard results into the run directory, exactly.

Rows are replayed into the parent's :class:`~rtbench.results.store.RunStore` (so the merged journals,
tables and manifest have exactly the single-process form) and histograms are added through
their encoded form (``decode_and_add``: exact, no re-binning). A shard that failed (crashed,
killed, lost with its node) is reported and left out: its histograms died with it, and merging
its journaled rows without them would make the tables and the percentiles disagree. Its
journals stay readable in ``workers/w<index>/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..metrics.records import ErrorRecord, SessionRecord, TurnRecord
from ..results.store import ERRORS_JOURNAL, HISTOGRAMS, SESSIONS_JOURNAL, TURNS_JOURNAL, RunStore
from .shardrun import ShardReport

SHARD_REPORT = "shard.json"
JOURNALS = (TURNS_JOURNAL, ERRORS_JOURNAL, SESSIONS_JOURNAL)


@dataclass(slots=True)
class ShardResult:
    """A shard's report, raw journals and encoded histograms: plain data, so a Ray actor on
    another machine can return it to the driver (nothing travels through a shared disk)."""

    report: ShardReport
    journals: dict[str, bytes]
    histograms: dict[str, dict[str, object]] | None   # None: failed, nothing to merge

    @classmethod
    def from_dir(cls, report: ShardReport, shard_dir: Path) -> ShardResult:
        journals = {name: (shard_dir / name).read_bytes() if (shard_dir / name).exists() else b""
                    for name in JOURNALS}
        hist_path = shard_dir / HISTOGRAMS
        histograms = (json.loads(hist_path.read_text())
                      if report.status != "failed" and hist_path.exists() else None)
        return cls(report, journals, histograms)

    def write_to(self, shard_dir: Path) -> None:
        """Keep a returned (remote) shard's raw data under the run, as a local worker does."""
        shard_dir.mkdir(parents=True, exist_ok=True)
        for name, data in self.journals.items():
            (shard_dir / name).write_bytes(data)
        if self.histograms is not None:
            (shard_dir / HISTOGRAMS).write_bytes(orjson.dumps(self.histograms))
        (shard_dir / SHARD_REPORT).write_bytes(orjson.dumps(self.report.as_dict()))


def rows(journal: bytes) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines journal; a line cut by a crash ends it (as in results.py)."""
    for line in journal.splitlines():
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            return


def merge_into(store: RunStore, results: Sequence[ShardResult]) -> None:
    """Append every mergeable shard's rows to ``store`` and add its histograms."""
    for result in sorted(results, key=lambda r: r.report.index):
        if result.histograms is None:
            continue
        for row in rows(result.journals[TURNS_JOURNAL]):
            store.turn(TurnRecord(**row))
        for row in rows(result.journals[ERRORS_JOURNAL]):
            store.error(ErrorRecord(**row))
        for row in rows(result.journals[SESSIONS_JOURNAL]):
            store.session(SessionRecord(**row))
        store.recorder.merge_encoded(result.histograms)


def failure_lines(results: Sequence[ShardResult], noun: str) -> list[str]:
    """One line per failed shard, for stderr."""
    out = []
    for r in results:
        if r.histograms is None:
            kept = sum(1 for _ in rows(r.journals[TURNS_JOURNAL]))
            out.append(f"rtbench: {noun} {r.report.index} failed ({r.report.message or 'unknown'}); "
                       f"its {kept} journaled turns are kept in workers/w{r.report.index}/ "
                       "but not merged")
    return out


def manifest_entry(kind: str, start_wall: float | None, results: Sequence[ShardResult]
                   ) -> dict[str, Any]:
    """The manifest's ``workers`` section: how the run was split and how each shard went."""
    skews = [r.report.start_skew_ms for r in results if r.report.start_skew_ms is not None]
    return {
        "kind": kind,
        "count": len(results),
        "start_at": start_wall,
        "start_skew_ms_max": max(skews) if skews else None,
        "failed": [r.report.index for r in results if r.histograms is None],
        "shards": [r.report.as_dict() for r in sorted(results, key=lambda r: r.report.index)],
    }
