"""``--out KIND=WHERE`` (repeatable, as in k6): metric samples streamed while the run goes.

One watcher tails the journal every ``every_s`` (in a worker thread: reading and writing files
never runs in the event loop the sessions send from) and hands the new samples to every
destination; at the end of the run the rest is flushed. ``json=FILE`` writes k6's JSON lines: a
``Metric`` declaration before a metric's first ``Point``; ``prometheus=URL`` (remote write) and
``otlp=URL`` (OTLP/HTTP) send them as OpenTelemetry metrics (otelout.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import orjson
import trio

from ..results.store import RunStore
from .progress import RunProgress
from .samples import METRICS, JournalTail, Sample
from .watcher import Watcher

#: The destinations ``--out`` knows.
KINDS = ("json", "prometheus", "otlp")
#: The kinds sent over HTTP by the OpenTelemetry SDK (the ``otel`` extra).
OTEL_KINDS = ("prometheus", "otlp")
EVERY_S = 1.0


class OutError(ValueError):
    """A ``--out`` value that cannot be used (one line)."""


@dataclass(frozen=True, slots=True)
class OutSpec:
    kind: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind}={self.where}"


def parse_out(text: str) -> OutSpec:
    kind, sep, where = text.partition("=")
    if not sep or not where:
        raise OutError(f"--out {text!r}: expected KIND=WHERE, e.g. json=samples.json")
    if kind not in KINDS:
        raise OutError(f"--out {text!r}: unknown output {kind!r} (known: {', '.join(KINDS)})")
    if kind in OTEL_KINDS:
        if not where.startswith(("http://", "https://")):
            raise OutError(f"--out {text!r}: {kind} needs an http(s):// URL")
        try:
            import opentelemetry.sdk.metrics  # noqa: F401 - only checked here
        except ImportError:
            raise OutError(f"--out {kind}=... needs the OpenTelemetry SDK: "
                           "pip install 'rtbench[otel]'") from None
    return OutSpec(kind, where)


class Output(Protocol):
    def write(self, samples: Sequence[Sample]) -> None: ...
    def close(self) -> None: ...


def _rfc3339(t: dt.datetime) -> str:
    return t.isoformat(timespec="microseconds")


class JsonOutput:
    """k6's ``--out json`` format: one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self._fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 - open for the whole run
        self._declared: set[str] = set()

    def write(self, samples: Sequence[Sample]) -> None:
        lines = []
        for s in samples:
            if s.metric not in self._declared:
                self._declared.add(s.metric)
                kind, contains = METRICS[s.metric]
                lines.append(orjson.dumps({"type": "Metric", "metric": s.metric, "data": {
                    "name": s.metric, "type": kind, "contains": contains, "thresholds": [],
                    "submetrics": None}}))
            lines.append(orjson.dumps({"type": "Point", "metric": s.metric, "data": {
                "time": _rfc3339(s.time), "value": s.value, "tags": dict(s.tags)}}))
        if lines:
            self._fh.write(b"\n".join(lines) + b"\n")
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def open_output(spec: OutSpec) -> Output:
    if spec.kind in OTEL_KINDS:
        from .otelout import OtelOutput  # the SDK is imported only when asked for

        return OtelOutput(spec.kind, spec.where)
    return JsonOutput(Path(spec.where))


def outputs_watcher(specs: Sequence[OutSpec], every_s: float = EVERY_S) -> Watcher:
    async def watch(store: RunStore, progress: RunProgress, scope: trio.CancelScope) -> None:
        tail = JournalTail(store.dir, str(store.manifest["started_at"]))
        outputs = [open_output(s) for s in specs]

        def forward() -> None:
            samples = tail.read()
            for out in outputs:
                out.write(samples)

        try:
            while True:
                await trio.sleep(every_s)
                await trio.to_thread.run_sync(forward)
        finally:      # the run ended (or stopped): what it journaled since the last tick
            forward()
            for out in outputs:
                out.close()

    return watch
