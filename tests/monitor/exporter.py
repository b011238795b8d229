"""A stand-in application for the monitor's tests: a real HTTP server on 127.0.0.1 with Prometheus metrics
whose error ratio and latency the test sets, and a health endpoint whose answer the test sets.

A background thread serves ``requests_per_second`` requests (counters only; default 100/s, so a [5s]
window holds ~400 of them and an integer count of errors is within 0.3 % of the ratio asked). Errors are
spread evenly (a running remainder), not drawn at random, so a ratio reads the same every run.

``/metrics`` (Prometheus text format):

- ``app_requests_total{code="200"|"500"}``: counters; both series exist from the start, so a healthy
  application's error ratio reads 0, not an empty result. ERROR_RATIO is the ratio (scale 100: percent);
  with no traffic it is NaN (0/0);
- ``app_request_duration_seconds``: a summary (``_sum``, ``_count``) of every request taking the latency
  set; MEAN_LATENCY reads it back exactly in seconds (a histogram's quantile would interpolate within a
  bucket);
- ``app_reported_latency_seconds``: a gauge the application stamps itself (``report``), like a batch job's
  or a federated metric: its sample keeps the time it was stamped, for ``max_age_seconds``.

``stop_reporting`` makes ``/metrics`` answer 503 (an application gone: ``up`` drops to 0 at the next
scrape while a ratio's window keeps its old samples); ``/health`` answers what ``set_health`` says.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JOB = "app"
UP = f'min(up{{job="{JOB}"}})'


def error_ratio(window: str = "5s") -> str:
    """The share of 5xx answers over ``window`` (0-1; a source's ``scale: 100`` makes it percent)."""
    return f'sum(rate(app_requests_total{{code=~"5.."}}[{window}])) / sum(rate(app_requests_total[{window}]))'


def mean_latency(window: str = "5s") -> str:
    """The mean request latency over ``window``, in seconds."""
    return (
        f"sum(rate(app_request_duration_seconds_sum[{window}])) / "
        f"sum(rate(app_request_duration_seconds_count[{window}]))"
    )


ERROR_RATIO = error_ratio()
MEAN_LATENCY = mean_latency()
REPORTED_LATENCY = "app_reported_latency_seconds"

TICK_SECONDS = 0.02


class Exporter:
    """The application: start() it, set what it does at any time, close() it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {"200": 0, "500": 0}
        self._latency_sum = 0.0
        self._pending = self._error_remainder = 0.0
        self.reset()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="exporter http", daemon=True),
            threading.Thread(target=self._serve_traffic, name="exporter traffic", daemon=True),
        ]

    @property
    def address(self) -> str:
        """host:port, Prometheus's scrape target."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"

    def start(self) -> Exporter:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join()

    def reset(self) -> None:
        """Back to the defaults (a healthy application at 100 requests/s, 0 % errors, 100 ms); counters
        keep counting, as a real application's do."""
        self.requests_per_second = 100.0
        self.error_ratio = 0.0
        self.latency_seconds = 0.1
        self.health_status: int = 200
        self.health_body: Any = {"status": "ok", "latency_ms": 12}
        self.health_delay_seconds = 0.0
        self.reporting = True
        with self._lock:
            self._reported: tuple[float, int] | None = None

    def set_errors(self, ratio: float) -> None:
        """The share of requests answered 500 from now on (0.08: 8 %)."""
        self.error_ratio = ratio

    def set_latency(self, seconds: float) -> None:
        self.latency_seconds = seconds

    def set_traffic(self, requests_per_second: float) -> None:
        """0: no traffic, and every ratio over a window without requests is NaN."""
        self.requests_per_second = requests_per_second

    def set_health(self, status: int, body: Any = None, *, delay_seconds: float = 0.0) -> None:
        """What ``/health`` answers (``body`` as JSON), after ``delay_seconds``."""
        self.health_status, self.health_body, self.health_delay_seconds = status, body, delay_seconds

    def stop_reporting(self) -> None:
        """``/metrics`` answers 503 from now on: the application is gone for Prometheus."""
        self.reporting = False

    def resume_reporting(self) -> None:
        self.reporting = True

    def report(self, value: float, *, stamped_at: float | None = None) -> None:
        """Set the self-stamped gauge, stamped now (or at ``stamped_at``, seconds since the epoch)."""
        with self._lock:
            self._reported = (value, int((time.time() if stamped_at is None else stamped_at) * 1000))

    def metrics(self) -> str:
        """The text Prometheus scrapes."""
        with self._lock:
            counts, latency_sum, reported = dict(self._counts), self._latency_sum, self._reported
        lines = [
            "# HELP app_requests_total Requests served, by status code.",
            "# TYPE app_requests_total counter",
            *(f'app_requests_total{{code="{code}"}} {count}' for code, count in counts.items()),
            "# HELP app_request_duration_seconds Time to answer a request.",
            "# TYPE app_request_duration_seconds summary",
            f"app_request_duration_seconds_sum {latency_sum!r}",
            f"app_request_duration_seconds_count {sum(counts.values())}",
        ]
        if reported:
            lines += [
                "# HELP app_reported_latency_seconds Latency the application measured and stamped itself.",
                "# TYPE app_reported_latency_seconds gauge",
                f"{REPORTED_LATENCY} {reported[0]!r} {reported[1]}",
            ]
        return "\n".join(lines) + "\n"

    def _serve_traffic(self) -> None:
        """Count requests at the rate set, measured on the monotonic clock so a late tick loses none."""
        last = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            with self._lock:
                self._pending += self.requests_per_second * (now - last)
                served = math.floor(self._pending)
                self._pending -= served
                self._error_remainder += served * self.error_ratio
                errors = math.floor(self._error_remainder)
                self._error_remainder -= errors
                self._counts["200"] += served - errors
                self._counts["500"] += errors
                self._latency_sum += served * self.latency_seconds
            last = now


def _handler(app: Exporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                if app.reporting:
                    self._answer(200, app.metrics().encode(), "text/plain; version=0.0.4")
                else:
                    self._answer(503, b"not reporting\n", "text/plain")
            elif self.path == "/health":
                time.sleep(app.health_delay_seconds)
                self._answer(app.health_status, json.dumps(app.health_body).encode(), "application/json")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (a source past its deadline)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: Prometheus scrapes every second."""

    return Handler
