"""``--out prometheus=URL`` (remote write) and ``--out otlp=URL`` (OTLP over HTTP): the live
samples as OpenTelemetry metrics, exported by the OpenTelemetry SDK in its own thread.

Trends become histograms (unit ms), counters counters, with the low-cardinality tags only
(target, region, model, status, phase, kind, code, severity): a session id per series would
flood a Prometheus. A destination that cannot be reached is said once on stderr and the run goes
on; the SDK's own retry messages are silenced.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .samples import METRICS, Sample

#: Attributes kept on the metrics; the others (session id, turn index) are per-row labels.
ATTRIBUTES = ("target", "region", "model", "status", "phase", "kind", "code", "severity")
EXPORT_EVERY_MS = 2000
TIMEOUT_S = 5


def _exporter(kind: str, url: str) -> Any:
    if kind == "prometheus":
        from opentelemetry.exporter.prometheus_remote_write import (
            PrometheusRemoteWriteMetricsExporter,
        )

        return PrometheusRemoteWriteMetricsExporter(endpoint=url, timeout=TIMEOUT_S)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=url, timeout=TIMEOUT_S)


class OtelOutput:
    """One OpenTelemetry meter provider exporting to one destination."""

    def __init__(self, kind: str, url: str, stream: TextIO = sys.stderr) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            MetricExporter,
            MetricExportResult,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource

        inner = _exporter(kind, url)
        label = f"--out {kind}={url}"
        warned: list[bool] = []

        class Once(MetricExporter):
            """The exporter, its failures said once (the run is never failed by them)."""

            def __init__(self) -> None:
                super().__init__(inner._preferred_temporality, inner._preferred_aggregation)

            def export(self, metrics_data: Any, timeout_millis: float = 10_000,
                       **kwargs: Any) -> MetricExportResult:
                try:
                    result: MetricExportResult = inner.export(metrics_data)
                except Exception as exc:  # any failure of a destination: said, never raised
                    result, why = MetricExportResult.FAILURE, str(exc)
                else:
                    why = "export failed"
                if result is not MetricExportResult.SUCCESS and not warned:
                    warned.append(True)
                    print(f"rtbench: {label}: cannot send samples ({why}); the run goes on, "
                          "its results are complete in the run directory", file=stream,
                          flush=True)
                return result

            def force_flush(self, timeout_millis: float = 10_000) -> bool:
                return True

            def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
                inner.shutdown()

        for name in ("opentelemetry.exporter", "opentelemetry.sdk.metrics"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        reader = PeriodicExportingMetricReader(Once(), export_interval_millis=EXPORT_EVERY_MS)
        self._provider = MeterProvider(metric_readers=[reader],
                                       resource=Resource.create({"service.name": "rtbench"}))
        meter = self._provider.get_meter("rtbench")
        # ``ttfa`` in ms: Prometheus names it ttfa_ms (the unit is appended), as rtbench does.
        self._histograms = {name: meter.create_histogram(name.removesuffix("_ms"), unit="ms")
                            for name, (k, _c) in METRICS.items() if k == "trend"}
        self._counters = {name: meter.create_counter(name)
                          for name, (k, _c) in METRICS.items() if k == "counter"}

    def write(self, samples: Sequence[Sample]) -> None:
        for s in samples:
            attrs = {k: v for k, v in s.tags.items() if k in ATTRIBUTES}
            if s.metric in self._histograms:
                self._histograms[s.metric].record(s.value, attrs)
            else:
                self._counters[s.metric].add(s.value, attrs)

    def close(self) -> None:
        """Export what is left and stop the export thread."""
        self._provider.shutdown()
