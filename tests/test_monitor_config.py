"""An environment's ``monitor:`` section: each kind of source, what is refused, the sources built from it."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config
from bot.monitor.sources import CommandSource, HttpSource, PrometheusSource, SqlSource, build_sources

# The example of the README's monitor section, as written there.
EXAMPLE = """
environments:
  production:
    dsn_env: PROD_DATABASE_URL
    migrations_dir: migrations
    monitor:
      pagerduty_routing_key_env: PAGERDUTY_ROUTING_KEY
      sources:
        error_rate:
          prometheus:
            url: http://prometheus.internal:9090
            query: >-
              sum(rate(http_requests_total{job="api",code=~"5.."}[1m]))
              / sum(rate(http_requests_total{job="api"}[1m]))
            up_query: min(up{job="api"})
            scale: 100
            timeout_seconds: 5
        latency:
          sql:
            query: SELECT avg(duration_ms) FROM app.request_log WHERE at > now() - interval '1 minute'
            timeout_seconds: 3
        health:
          http:
            url: https://api.internal/api/health
            timeout_seconds: 2
  staging:
    dsn_env: STAGING_DATABASE_URL
    migrations_dir: migrations
    monitor:
      sources:
        error_rate:
          command:
            argv: [sh, -c, "kubectl logs -l app=nself-chat --tail=1000 | grep -ci error"]
            timeout_seconds: 20
        latency:
          http:
            url: http://staging-api.internal/api/health
            json_field: checks.database.latency_ms
"""


def _example(tmp_path: Path) -> Path:
    (tmp_path / "migrations").mkdir(exist_ok=True)
    path = tmp_path / "migrate-bot.yml"
    path.write_text(EXAMPLE)
    return path


def test_the_example_parses_into_each_kind_of_source(tmp_path: Path) -> None:
    config = load_config(_example(tmp_path))
    production = config.environment("production").monitor
    assert {name: s.kind for name, s in production.sources.configured().items()} == {
        "error_rate": "prometheus",
        "latency": "sql",
        "health": "http",
    }
    assert production.sources.error_rate.prometheus.scale == 100
    assert production.pagerduty_url == "https://events.pagerduty.com/v2/enqueue"
    staging = config.environment("staging").monitor
    assert staging.sources.error_rate.command.argv[0] == "sh" and staging.sources.health is None
    assert staging.pagerduty_routing_key_env is None


def test_an_environment_without_a_monitor_section_watches_nothing_but_the_database(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    env = parse_config(
        {"environments": {"production": {"migrations_dir": "migrations"}}}, tmp_path
    ).environment(None)
    assert env.monitor.sources.configured() == {} and build_sources(env, {}) == {}


def _problems(tmp_path: Path, monitor: dict) -> list[str]:
    (tmp_path / "migrations").mkdir(exist_ok=True)
    data = {"environments": {"production": {"migrations_dir": "migrations", "monitor": monitor}}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    return info.value.problems


PROM = {"url": "http://prometheus:9090", "query": "up"}


@pytest.mark.parametrize(
    ("monitor", "expected"),
    [
        (
            {"sources": {"error_rate": {"graphite": {"target": "x"}}}},
            "monitor.sources.error_rate: 'graphite' is not a source kind; "
            "expected exactly one of prometheus, http, sql, command",
        ),
        (
            {"sources": {"error_rate": {"prometheus": PROM, "sql": {"query": "SELECT 1"}}}},
            "monitor.sources.error_rate: expected exactly one of prometheus",
        ),
        ({"sources": {"error_rate": {}}}, "monitor.sources.error_rate: expected exactly one of"),
        ({"sources": {"throughput": {"prometheus": PROM}}}, "monitor.sources.throughput: Extra inputs"),
        ({"sources": {"health": {"http": {"url": "ftp://h/x"}}}}, "is not an http:// or https:// URL"),
        ({"sources": {"health": {"http": {"url": "/health"}}}}, "is not an http:// or https:// URL"),
        ({"sources": {"health": {"http": {"url": "http://h", "timeout_seconds": 0}}}}, "timeout_seconds"),
        (
            {"sources": {"latency": {"sql": {"query": "SELECT 1", "dsn": "x"}}}},
            "latency.sql.dsn: Extra inputs",
        ),
        ({"sources": {"latency": {"command": {"argv": []}}}}, "latency.command.argv"),
        (
            {"sources": {"latency": {"command": {"argv": ["x"], "pattern": "("}}}},
            "is not a regular expression",
        ),
        ({"sources": {"latency": {"command": {"argv": ["x"], "pattern": "(a)(b)"}}}}, "has 2 groups"),
        ({"sources": {"error_rate": {"prometheus": {**PROM, "scale": 0}}}}, "scale"),
        ({"pagerduty_routing_key_env": "NOT VALID"}, "'NOT VALID' is not an environment variable name"),
        ({"pagerduty_routing_key": "R0UT1NGK3Y"}, "routing keys never go in the file"),
    ],
)
def test_what_cannot_work_is_refused_with_its_key(tmp_path: Path, monitor: dict, expected: str) -> None:
    problems = _problems(tmp_path, monitor)
    assert any(expected in p and p.startswith("environments.production.monitor") for p in problems), problems
    assert not any("R0UT1NGK3Y" in p for p in problems)


@pytest.mark.parametrize(
    "monitor",
    [
        {"sources": {"error_rate": {"prometheus": {**PROM, "url": "http://admin:hunter2@prometheus:9090"}}}},
        {"sources": {"health": {"http": {"url": "https://admin:hunter2@api/health"}}}},
        {"pagerduty_url": "https://u:hunter2@events.pagerduty.com/v2/enqueue"},
    ],
)
def test_a_url_with_a_password_is_refused_and_not_repeated(tmp_path: Path, monitor: dict) -> None:
    problems = _problems(tmp_path, monitor)
    assert any("carries a password: credentials never go in the file" in p for p in problems), problems
    assert not any("hunter2" in p for p in problems) and any("***" in p for p in problems)


def test_sources_are_built_from_the_config_and_sql_reads_the_environments_target(
    tmp_path: Path, target_dsn: str
) -> None:
    config = load_config(_example(tmp_path))
    production = build_sources(config.environment("production"), {"PROD_DATABASE_URL": target_dsn})
    assert [type(s) for s in production.values()] == [PrometheusSource, SqlSource, HttpSource]
    assert all(name == source.metric for name, source in production.items())
    staging = build_sources(config.environment("staging"), {})
    assert [type(s) for s in staging.values()] == [CommandSource, HttpSource]
    # the example's query reads a table this empty database lacks: unknown, with the server's reason
    latency = production["latency"].read(datetime.now(UTC))
    assert latency.value is None and 'relation "app.request_log" does not exist' in latency.detail
