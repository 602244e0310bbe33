"""``--out prometheus=URL`` against a real Prometheus (remote-write receiver), ``--out otlp=URL``
against an OTLP/HTTP receiver decoding the SDK's protobuf, and a destination that is down:
said once, the run unharmed."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

if TYPE_CHECKING:
    from gatehelp import RunSim

pytest_plugins = ["gatehelp"]   # fixture: run_sim
pytest.importorskip("opentelemetry.sdk.metrics")
PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A Prometheus accepting remote write on a free loopback port; yields its base URL."""
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\n")
    base = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address={base.removeprefix('http://')}",
                             "--web.enable-remote-write-receiver"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, "prometheus did not start"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(base: str, expr: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return list(json.load(resp)["data"]["result"])


def test_samples_reach_prometheus_by_remote_write(run_sim: RunSim, tmp_path: Path,
                                                  prometheus: str) -> None:
    code, out, _run = run_sim(tmp_path, "prw", 300, "--no-report",
                              "--out", f"prometheus={prometheus}/api/v1/write")
    assert code == 0, out
    assert "cannot send" not in out
    (count,) = query(prometheus, 'sum(ttfa_ms_count{target="local/sim-realtime"})')
    assert count["value"][1] == "8"     # 4 sessions x 2 turns, every one completed
    (turns,) = query(prometheus, 'sum(turns{status="ok"})')
    assert turns["value"][1] == "8"
    # Per-row labels stay out of the series.
    assert all("session_id" not in r["metric"] for r in query(prometheus, "ttfa_ms_count"))


def test_a_down_destination_is_reported_once_and_the_run_goes_on(run_sim: RunSim,
                                                                 tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    code, out, run = run_sim(tmp_path, "down", 300, "--no-report",
                             "--out", f"otlp={down}/v1/metrics",
                             "--out", f"prometheus={down}/api/v1/write")
    assert code == 0, out
    assert out.count(f"--out otlp={down}/v1/metrics: cannot send samples") == 1, out
    assert out.count(f"--out prometheus={down}/api/v1/write: cannot send samples") == 1, out
    assert (run / "turns.parquet").exists()


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP metrics receiver: keeps each decoded export request."""

    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        reply = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_samples_reach_an_otlp_collector(run_sim: RunSim, tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
        code, out, _run = run_sim(tmp_path, "otlp", 300, "--no-report", "--out", f"otlp={url}")
    finally:
        server.shutdown()
    assert code == 0, out
    assert "cannot send" not in out
    counts: dict[tuple[tuple[str, str], ...], int] = {}   # cumulative: the last export holds the whole run
    for request in _Collector.received:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == "ttfa":
                        assert metric.unit == "ms"
                        counts = {tuple(sorted((a.key, a.value.string_value)
                                               for a in p.attributes)): p.count
                                  for p in metric.histogram.data_points}
    assert counts and sum(counts.values()) == 8, counts
    assert all(("target", "local/sim-realtime") in key for key in counts)
