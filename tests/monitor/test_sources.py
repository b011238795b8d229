"""Each source against the real thing: Prometheus scraping the stand-in application, its health endpoint,
the test database, a command. Whatever cannot be read is unknown with its reason, by its deadline."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.monitor.config import CommandConfig, HttpConfig, PrometheusConfig, SqlConfig
from bot.monitor.sources import CommandSource, HttpSource, PrometheusSource, Sample, SqlSource
from tests.monitor.conftest import SILENT
from tests.monitor.exporter import ERROR_RATIO, MEAN_LATENCY, REPORTED_LATENCY, UP, Exporter, error_ratio
from tests.monitor.prometheus import Prometheus, free_port

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MARGIN = 1.0  # seconds a read may take past its deadline on a busy machine


def timed(read: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    return read(), time.monotonic() - started


def unknown(found: Sample, *words: str) -> None:
    assert not found.known and found.value is None, found
    assert all(word in found.detail for word in words), found.detail


def prom(
    prometheus: Prometheus | str, query: str, metric: str = "error_rate", **settings: Any
) -> PrometheusSource:
    url = prometheus if isinstance(prometheus, str) else prometheus.url
    return PrometheusSource(metric, PrometheusConfig(url=url, query=query, **settings))


def test_prometheus_reads_the_error_rate_in_percent_and_the_latency(
    prometheus: Prometheus, app: Exporter
) -> None:
    app.set_errors(0.08)
    app.set_latency(0.25)
    prometheus.wait_near(ERROR_RATIO, 0.08, tolerance=0.003)
    prometheus.wait_near(MEAN_LATENCY, 0.25, tolerance=0.0001)
    error_rate = prom(prometheus, ERROR_RATIO, up_query=UP, scale=100).read(NOW)
    assert error_rate.known and error_rate.value == pytest.approx(8.0, abs=0.3)
    assert error_rate.metric == "error_rate" and error_rate.taken_at == NOW
    assert "× 100" in error_rate.detail and "app_requests_total" in error_rate.detail
    latency = prom(prometheus, MEAN_LATENCY, "latency", up_query=UP).read(NOW)
    assert latency.value == pytest.approx(0.25, abs=0.0001)


def test_an_empty_result_a_bad_query_and_several_series_are_unknown(
    prometheus: Prometheus, app: Exporter
) -> None:
    unknown(prom(prometheus, 'sum(rate(app_requests_total{code="404"}[5s]))').read(NOW), "answers nothing")
    unknown(prom(prometheus, "sum(rate(").read(NOW), "Prometheus answered HTTP 400", "parse error")
    unknown(prom(prometheus, "app_requests_total").read(NOW), "answers 2 series", "aggregate")
    unknown(prom(prometheus, "1/0").read(NOW), "+Inf")


def test_no_traffic_is_nan_and_unknown(prometheus: Prometheus, app: Exporter) -> None:
    app.set_traffic(0)
    prometheus.wait_nan(ERROR_RATIO)
    unknown(prom(prometheus, ERROR_RATIO, scale=100).read(NOW), "NaN")


def test_a_stopped_application_is_unknown_though_its_ratio_still_answers(
    prometheus: Prometheus, app: Exporter
) -> None:
    # any finite ratio will do: a previous test's errors stay in a [30s] window for up to 30 s
    prometheus.wait_for(error_ratio("30s"), lambda ratio: ratio is not None and math.isfinite(ratio))
    app.stop_reporting()
    prometheus.wait_for(UP, lambda up: up == 0, timeout=5, what="up after the application stopped")
    stale = prom(prometheus, error_ratio("30s"), scale=100).read(NOW)
    assert stale.known, "a [30s] window keeps answering the application's last values"
    unknown(prom(prometheus, error_ratio("30s"), up_query=UP, scale=100).read(NOW), "not up", "stale")
    unknown(prom(prometheus, ERROR_RATIO, up_query='up{job="nope"}').read(NOW), "up_query answers nothing")
    app.resume_reporting()
    prometheus.wait_for(UP, lambda up: up == 1, timeout=5)


def test_a_sample_older_than_max_age_is_unknown(prometheus: Prometheus, app: Exporter) -> None:
    app.report(0.3, stamped_at=time.time() - 60)
    prometheus.wait_for(REPORTED_LATENCY, lambda v: v == 0.3)
    unknown(prom(prometheus, REPORTED_LATENCY, "latency", max_age_seconds=30).read(NOW), "s old", "0.3")
    app.report(0.2)
    prometheus.wait_for(REPORTED_LATENCY, lambda v: v == 0.2)
    fresh = prom(prometheus, REPORTED_LATENCY, "latency", max_age_seconds=30).read(NOW)
    assert fresh.value == 0.2 and "s old" in fresh.detail


def test_prometheus_down_or_silent_is_unknown_by_the_deadline(hanging_target: int) -> None:
    down, seconds = timed(
        lambda: prom(f"http://127.0.0.1:{free_port()}", ERROR_RATIO, timeout_seconds=2).read(NOW)
    )
    unknown(down, "unreachable", "refused")
    assert seconds < 2
    silent, seconds = timed(
        lambda: prom(f"http://127.0.0.1:{hanging_target}", UP, timeout_seconds=1).read(NOW)
    )
    unknown(silent, "within 1 s")
    assert seconds < 1 + MARGIN


def test_health_is_1_on_2xx_and_0_on_anything_else(app: Exporter, hanging_target: int) -> None:
    health = HttpSource("health", HttpConfig(url=app.health_url, timeout_seconds=1))
    passing = health.read(NOW)
    assert passing.value == 1.0 and "HTTP 200" in passing.detail
    app.set_health(503, {"status": "down"})
    failing = health.read(NOW)
    assert failing.value == 0.0 and "HTTP 503" in failing.detail
    refused = HttpSource("health", HttpConfig(url=f"http://127.0.0.1:{free_port()}/health")).read(NOW)
    assert refused.value == 0.0 and "refused" in refused.detail
    app.set_health(200, {"status": "ok"}, delay_seconds=3)
    slow, seconds = timed(lambda: health.read(NOW))
    assert slow.value == 0.0 and "within 1 s" in slow.detail
    assert seconds < 1 + MARGIN
    silent = HttpSource("health", HttpConfig(url=f"http://127.0.0.1:{hanging_target}/", timeout_seconds=1))
    assert silent.read(NOW).value == 0.0


def test_a_number_from_the_health_json_or_unknown(app: Exporter) -> None:
    def field(path: str) -> Sample:
        return HttpSource("latency", HttpConfig(url=app.health_url, json_field=path)).read(NOW)

    app.set_health(200, {"status": "ok", "checks": [{"latency_ms": 42.5}], "up": True})
    assert field("checks.0.latency_ms").value == 42.5
    unknown(field("checks.1.latency_ms"), "no checks.1.latency_ms")
    unknown(field("status"), "not a number", '"ok"')
    unknown(field("up"), "not a number")
    app.set_health(500, {"checks": [{"latency_ms": 1}]})
    unknown(field("checks.0.latency_ms"), "HTTP 500")  # a failing request is no latency of 0


def sql(dsn: str | None, query: str, timeout: float = 2) -> SqlSource:
    return SqlSource("error_rate", SqlConfig(query=query, timeout_seconds=timeout), dsn, "TARGET_DSN")


def test_sql_reads_one_number_and_nothing_else(target_dsn: str) -> None:
    found = sql(target_dsn, "SELECT 4.5::numeric").read(NOW)
    assert found.value == 4.5 and "SQL: 4.5" in found.detail
    unknown(sql(target_dsn, "SELECT NULL::int").read(NOW), "NULL")
    unknown(sql(target_dsn, "SELECT 1 WHERE false").read(NOW), "no rows")
    unknown(sql(target_dsn, "SELECT 1, 2").read(NOW), "2 columns")
    unknown(sql(target_dsn, "SELECT 'x'").read(NOW), "a str")
    unknown(sql(target_dsn, "SELECT nope").read(NOW), "the target answered", "nope")
    unknown(sql(target_dsn, "CREATE TABLE t (a int)").read(NOW), "read-only transaction")
    unknown(sql(None, "SELECT 1").read(NOW), "TARGET_DSN is not set")


def test_a_slow_query_ends_at_its_statement_timeout(target_dsn: str) -> None:
    slow, seconds = timed(lambda: sql(target_dsn, "SELECT pg_sleep(10)", timeout=1).read(NOW))
    unknown(slow, "statement_timeout")
    assert seconds < 1 + MARGIN


def monitor_reads() -> int:
    return sum(thread.name == "monitor read" for thread in threading.enumerate())


def test_a_target_that_never_answers_is_unknown_by_the_deadline_and_leaves_one_thread(
    hanging_target: int,
) -> None:
    source = sql(f"postgresql://u@127.0.0.1:{hanging_target}/db", "SELECT 1", timeout=1)
    before = monitor_reads()
    first, seconds = timed(lambda: source.read(NOW))
    unknown(first, "no answer within 1 s")
    assert seconds < 1 + MARGIN
    for _ in range(5):  # its connection attempt runs to connect_timeout (2 s): no new thread meanwhile
        unknown(source.read(NOW), "has still not returned")
    assert monitor_reads() - before <= 1


def test_a_target_silent_after_connecting_is_unknown_and_its_thread_freed(silent_target: str) -> None:
    source = sql(silent_target, f"SELECT 1 {SILENT}", timeout=1)
    before = monitor_reads()
    found, seconds = timed(lambda: source.read(NOW))
    unknown(found, "no answer within 1 s")
    assert seconds < 1 + MARGIN
    deadline = time.monotonic() + 2  # the socket shut down ends psycopg's endless wait at once
    while monitor_reads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert monitor_reads() == before
    assert sql(silent_target, "SELECT 7").read(NOW).value == 7


def command(*argv: str, **settings: Any) -> CommandSource:
    return CommandSource("error_rate", CommandConfig(argv=list(argv), **settings))


def python(code: str, **settings: Any) -> CommandSource:
    return command(sys.executable, "-c", code, **settings)


def test_a_command_prints_a_number() -> None:
    printed = "print('warming up 3 pods'); print(); print('errors: 7 of 1000')"
    assert python(printed).read(NOW).value == 7
    assert python(printed, pattern=r"of (\d+)").read(NOW).value == 1000
    assert python("print('-2.5e1')").read(NOW).value == -25
    redacted = python("print('postgresql://u:hunter2@db/x'); print('12')").read(NOW)
    assert redacted.value == 12 and "hunter2" not in redacted.detail


def test_a_command_that_fails_prints_no_number_or_hangs_is_unknown() -> None:
    unknown(python("print('5 errors'); raise SystemExit(3)").read(NOW), "exited with code 3", "5 errors")
    unknown(python("print('no errors today')").read(NOW), "no number in the last line")
    unknown(python("print('7 errors')", pattern=r"latency=(\d+)").read(NOW), "no number in pattern")
    unknown(python("print('postgresql://u:hunter2@db/x')").read(NOW), "no number")
    assert "hunter2" not in python("print('postgresql://u:hunter2@db/x')").read(NOW).detail
    unknown(command("/nonexistent/kubectl").read(NOW), "exited with code 127", "could not start")
    hung, seconds = timed(lambda: python("import time; time.sleep(30)", timeout_seconds=1).read(NOW))
    unknown(hung, "did not finish within 1 s")
    assert seconds < 1 + MARGIN
