"""The monitor window on a real run: plan 054 applied on PostgreSQL, the application's error rate and latency
read from a real Prometheus scraping the stand-in application, its health from its real HTTP endpoint,
the leader's watch running. The policy's durations are compressed to seconds in config (the rules, the
samples and the chain are the policy's own)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from bot.app import Services
from bot.demo import load_example_schema
from bot.monitor.incidents import IncidentKind
from bot.monitor.loop import MonitorLoop
from bot.monitor.window import WindowState
from bot.states import PlanState
from storage.models import EventRecord, IncidentRecord, MonitorRecord, PageRecord, SampleRecord
from tests.conftest import EXAMPLES
from tests.execution.test_runner import approved, run_all
from tests.monitor.exporter import ERROR_RATIO, MEAN_LATENCY, UP, Exporter
from tests.monitor.plans import FILE, production_services
from tests.monitor.prometheus import Prometheus

SECOND = 1 / 60  # a policy minute, in minutes


def sources(prometheus: Prometheus, app: Exporter, error_query: str = ERROR_RATIO) -> dict[str, Any]:
    return {
        "error_rate": {
            "prometheus": {"url": prometheus.url, "query": error_query, "scale": 100, "up_query": UP}
        },
        "latency": {"prometheus": {"url": prometheus.url, "query": MEAN_LATENCY, "up_query": UP}},
        "health": {"http": {"url": app.health_url, "timeout_seconds": 2}},
    }


def watched(
    tmp_path: Path, target_dsn: str, monitor: dict[str, Any], env_monitor: dict[str, Any], **policy: Any
) -> Services:
    load_example_schema(target_dsn, EXAMPLES)
    return production_services(tmp_path, env_monitor=env_monitor, policy={"monitor": monitor, **policy})


@pytest.fixture
def watch() -> Iterator[Callable[[Services], MonitorLoop]]:
    """The leader's watch on a test's services, stopped at the end."""
    loops: list[MonitorLoop] = []

    def start(services: Services) -> MonitorLoop:
        loop = MonitorLoop(services.monitors, services.incidents)
        loop.lead()
        loops.append(loop)
        return loop

    yield start
    for loop in loops:
        loop.shutdown()


def wait(what: str, ready: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {timeout} s")
        time.sleep(0.2)
    return found


def state(services: Services, plan_id: int) -> PlanState:
    return PlanState(services.approvals.status(plan_id)[0].state)


def events(services: Services, plan_id: int, kind: str) -> list[str]:
    with services.db.session() as session:
        query = select(EventRecord).where(EventRecord.plan_id == plan_id, EventRecord.kind == kind)
        return [e.message for e in session.scalars(query.order_by(EventRecord.id))]


def pages(services: Services) -> list[tuple[str, str]]:
    with services.db.session() as session:
        return [(p.role, p.why) for p in session.scalars(select(PageRecord).order_by(PageRecord.id))]


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch, target_dsn: str) -> None:
    monkeypatch.setenv("TARGET_DSN", target_dsn)


def test_a_clean_window_ends_all_clear_and_completes_the_plan(
    tmp_path: Path, target_dsn: str, running: None, prometheus: Prometheus, app: Exporter, watch: Any
) -> None:
    prometheus.wait_near(ERROR_RATIO, 0.0, tolerance=0.001)
    services = watched(
        tmp_path,
        target_dsn,
        {"window_minutes": 8 * SECOND, "interval_seconds": 0.5},
        {"sources": sources(prometheus, app)},
    )
    plan_id = approved(services, FILE, "production")
    assert run_all(services, plan_id) is PlanState.MONITORING
    assert events(services, plan_id, "monitor_baseline")[0].startswith("baseline: error_rate 0")
    watch(services)
    wait("completed", lambda: state(services, plan_id) is PlanState.COMPLETED, timeout=30)
    assert events(services, plan_id, "monitor_all_clear")
    with services.db.session() as session:
        verdicts = list(session.scalars(select(SampleRecord.verdict)))
    assert len(verdicts) >= 10 and set(verdicts) == {"ok"}, verdicts
    assert pages(services) == []


def test_eight_percent_errors_in_the_first_minutes_roll_back_by_themselves(
    tmp_path: Path, target_dsn: str, running: None, prometheus: Prometheus, app: Exporter, watch: Any
) -> None:
    monitor = {
        "window_minutes": 1,
        "interval_seconds": 0.5,
        "rollback_triggers": {
            "error_rate_pct": 5,
            "error_rate_window_minutes": 0.75,
            "latency_degradation_pct": 50,
            "health_check_failures": 1,
        },
    }
    services = watched(tmp_path, target_dsn, monitor, {"sources": sources(prometheus, app)})
    plan_id = approved(services, FILE, "production")
    assert run_all(services, plan_id) is PlanState.MONITORING
    watch(services)
    app.set_errors(0.08)
    wait("rolled back", lambda: state(services, plan_id) is PlanState.ROLLED_BACK, timeout=40)
    # a rising error rate may open a P3 first (above the normal 1 %); past 5 % it rolls back
    told = events(services, plan_id, "incident_opened") + events(services, plan_id, "incident_raised")
    assert any(
        re.search(r"error rate \d+\.\d% > 5% in the first 0.75 minutes \(sample #\d+", t) for t in told
    ), told
    rolling = events(services, plan_id, "rolling_back")
    assert rolling and "incident #1" in rolling[0]
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute("SELECT to_regclass('nchat.nchat_message_bookmarks')").fetchone() == (None,)
    assert events(services, plan_id, "monitor_stopped")


def test_an_empty_result_asks_a_human_instead_of_passing(
    tmp_path: Path, target_dsn: str, running: None, prometheus: Prometheus, app: Exporter, watch: Any
) -> None:
    nothing = 'sum(rate(app_requests_total{code="999"}[5s]))'  # no such series: an empty answer
    monitor = {"window_minutes": 1, "interval_seconds": 0.5, "inconclusive_samples": 3}
    services = watched(tmp_path, target_dsn, monitor, {"sources": sources(prometheus, app, nothing)})
    plan_id = approved(services, FILE, "production")
    run_all(services, plan_id)
    watch(services)
    wait("a question", lambda: pages(services), timeout=20)
    with services.db.session() as session:
        incident = session.scalars(select(IncidentRecord)).one()
        assert (incident.kind, incident.severity) == ("inconclusive", None)
        assert "no data for 3 samples" in incident.reason and "answers nothing" in incident.reason
    assert pages(services) == [("on_call", "opened")]
    services.incidents.resolve(incident.id, user="U0ONCALL", resolution="continue watching")
    assert state(services, plan_id) is PlanState.MONITORING  # it goes on watching


def test_a_p2_breach_later_pages_the_chain_until_someone_acknowledges(
    tmp_path: Path, target_dsn: str, running: None, prometheus: Prometheus, app: Exporter, watch: Any
) -> None:
    monitor = {
        "window_minutes": 2,
        "interval_seconds": 0.5,
        "rollback_triggers": {
            "error_rate_pct": 5,
            "error_rate_window_minutes": 2 * SECOND,
            "latency_degradation_pct": 50,
            "health_check_failures": 1,
        },
    }
    chain = {
        "chain": [
            {"role": "on_call", "after_minutes": 0},
            {"role": "technical_lead", "after_minutes": 4 * SECOND},
            {"role": "cto", "after_minutes": 8 * SECOND},
        ],
        "repeat_ping_minutes": 1,
    }
    services = watched(tmp_path, target_dsn, monitor, {"sources": sources(prometheus, app)}, escalation=chain)
    plan_id = approved(services, FILE, "production")
    run_all(services, plan_id)
    time.sleep(2.5)  # past the first minutes: a breach now is an incident, not a rollback
    watch(services)
    app.set_errors(0.07)
    wait("the CTO paged", lambda: ("cto", "escalated") in pages(services), timeout=40)
    # on-call at once (a P3 first, paging nobody, when the error rate rose through 1 %), then the chain
    paged = pages(services)
    assert [role for role, _ in paged[:3]] == ["on_call", "technical_lead", "cto"], paged
    assert paged[1:3] == [("technical_lead", "escalated"), ("cto", "escalated")]
    with services.db.session() as session:
        incident = session.scalars(select(IncidentRecord)).one()
        assert incident.severity == "P2" and re.search(r"error rate \d+\.\d% > 5%", incident.reason)
    services.incidents.acknowledge(incident.id, user="U0CTO")
    count = len(pages(services))
    time.sleep(2)
    assert len(pages(services)) == count  # acknowledged: nobody is paged again
    assert state(services, plan_id) is PlanState.MONITORING


def test_a_window_that_ends_with_an_incident_open_is_held_until_it_is_resolved(
    tmp_path: Path, target_dsn: str, running: None, prometheus: Prometheus, app: Exporter, watch: Any
) -> None:
    """Held, the window is not due (no poll takes the write lock for it) until its incident is over; then
    it ends all clear and the plan completes."""
    monitor = {"window_minutes": 3 * SECOND, "interval_seconds": 0.5}
    services = watched(tmp_path, target_dsn, monitor, {"sources": sources(prometheus, app)})
    plan_id = approved(services, FILE, "production")
    run_all(services, plan_id)
    incident = services.incidents.open(
        plan_id, kind=IncidentKind.MANUAL, severity="P3", reason="a slow page", actor="U0ONCALL"
    )
    watch(services)
    held = wait("the window held", lambda: window_state(services, plan_id) == WindowState.HELD.value)
    assert held and state(services, plan_id) is PlanState.MONITORING
    assert window_id(services, plan_id) not in services.monitors.due()
    services.incidents.resolve(incident, user="U0ONCALL", resolution="fixed")
    wait("the plan completed", lambda: state(services, plan_id) is PlanState.COMPLETED)
    assert window_state(services, plan_id) == WindowState.ALL_CLEAR.value
    assert events(services, plan_id, "monitor_all_clear")


def window_id(services: Services, plan_id: int) -> int:
    with services.db.session() as session:
        return session.scalars(select(MonitorRecord.id).where(MonitorRecord.plan_id == plan_id)).one()


def window_state(services: Services, plan_id: int) -> str:
    with services.db.session() as session:
        return session.scalars(select(MonitorRecord.state).where(MonitorRecord.plan_id == plan_id)).one()
