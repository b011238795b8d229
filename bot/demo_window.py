"""The demo's hour after apply, played in seconds: a stand-in application, a clock that jumps, and the
timeline export of how it went.

The stand-in application reports its error rate, latency and health into a table on the demo's database
(``demo_app.metrics``), which the production environment's SQL sources read (examples/demo-config.yaml).
The demo's clock is the wall clock plus an offset it moves a sample interval at a time, so the window's
samples, pages and deadlines happen as they would over minutes, with the store's real rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bot.app import Services
from bot.delivery import Deliverer
from bot.export import Format
from bot.export.command import export_timelines

# The files the demo writes its run's timeline to: the README shows them (docs/example-timeline.*).
EXAMPLE_NAME = "example-timeline"
HEALTHY_SAMPLES = 24  # 12 minutes at 30 s: past the early minutes, a breach is an incident
ACKNOWLEDGED_AFTER = 6  # samples between the page and on-call's acknowledgement
ROLLED_BACK_AFTER = 4  # samples between the acknowledgement and the Technical Lead's rollback


class DemoClock:
    """The wall clock, plus however far the demo has moved it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def start_app(dsn: str) -> None:
    """The stand-in application's metrics table, healthy."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA IF NOT EXISTS demo_app; DROP TABLE IF EXISTS demo_app.metrics;"
            "CREATE TABLE demo_app.metrics (error_rate_pct float8, latency_ms float8, health float8);"
            "INSERT INTO demo_app.metrics VALUES (0.3, 100, 1)"
        )


def report(dsn: str, *, error_rate_pct: float, latency_ms: float, health: float = 1) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE demo_app.metrics SET error_rate_pct = %s, latency_ms = %s, health = %s",
            (error_rate_pct, latency_ms, health),
        )


def walk_window(
    services: Services,
    deliverer: Deliverer,
    clock: DemoClock,
    plan_id: int,
    dsn: str,
    say: Callable[[str], None],
) -> None:
    """Healthy for 12 minutes, then 7 % errors and 30 % slower: a P2 incident pages on-call, who
    acknowledges; the Technical Lead rolls back and resolves it."""
    interval = services.config.policy.monitor.interval_seconds
    count = 0

    def sample(samples: int, error_rate_pct: float, latency_ms: float) -> None:
        nonlocal count
        for _ in range(samples):
            count += 1
            wobble = math.sin(count)  # the same every run: the example stays readable
            report(dsn, error_rate_pct=error_rate_pct + 0.1 * wobble, latency_ms=latency_ms + 4 * wobble)
            clock.advance(interval)
            for monitor_id in services.monitors.due():
                services.monitors.tick(monitor_id)
            for incident_id in services.incidents.due():
                services.incidents.escalate(incident_id)
            deliverer.deliver_due()

    on_call = services.config.roles["on_call"].users[0]
    lead = services.config.roles["technical_lead"].users[0]
    say(f"\nThe window after apply, {interval:g} s a sample (the demo's clock jumps): healthy at first…")
    sample(HEALTHY_SAMPLES, 0.3, 100)
    say("…then the error rate jumps to 7 % and latency to 130 ms:")
    sample(2, 7.1, 131)
    with services.db.session() as session:
        incident = services.incidents.unresolved(session, plan_id)
        assert incident is not None, "two bad samples open an incident"
        incident_id = incident.id
    sample(ACKNOWLEDGED_AFTER, 7.1, 131)
    services.incidents.acknowledge(incident_id, user=on_call)
    sample(ROLLED_BACK_AFTER, 7.1, 131)
    runner = services.runner
    reason = "error rate at 7% since the migration; the new index slows sign-in"
    state = runner.execute(runner.order_rollback(plan_id, user=lead, reason=reason))
    clock.advance(60)
    services.incidents.resolve(incident_id, user=lead, resolution="rolled back; error rate back to 0.3%")
    deliverer.deliver_due()
    say(f"Plan #{plan_id} is {state.label}")


def write_example(services: Services, plan_id: int, out: Path, say: Callable[[str], None]) -> None:
    """The run's timeline export: the report and its chart, as ``/migrate timeline`` uploads them."""
    written = export_timelines(
        db=services.db, config=services.config, plans=[plan_id], fmt=Format.MD, out=out, name=EXAMPLE_NAME
    )
    for path in written:
        say(f"Timeline of plan #{plan_id}: {path}")
