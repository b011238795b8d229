"""Incidents and their escalation on the policy's defaults (the guide's chain: on-call at once, the
Technical Lead after 15 minutes, the CTO after an hour; P1 and P2 response and rollback-decision times),
with time moved by hand. Plans really ran on PostgreSQL; pages are rows owed to Slack and PagerDuty, and
PagerDuty's are delivered to a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, update

from bot.app import Services
from bot.delivery import Deliverer
from bot.demo import load_example_schema
from bot.errors import Forbidden, InvalidState
from bot.monitor.incidents import IncidentKind
from bot.notifier import ConsoleNotifier
from bot.states import PlanState
from storage.models import EventRecord, IncidentRecord, OutboxRecord, PageRecord, PlanRecord
from tests.clock import Clock
from tests.conftest import EXAMPLES
from tests.execution.test_runner import approved, run_all
from tests.monitor.plans import FILE, production_services

KEY_ENV = "TEST_PAGERDUTY_KEY"


class PagerDuty:
    """A real HTTP server on 127.0.0.1 that takes Events API v2 triggers as PagerDuty does (202)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        received = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(202)
                self.end_headers()
                self.wfile.write(b'{"status":"success"}')

            def log_message(self, *args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v2/enqueue"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def pagerduty() -> Iterator[PagerDuty]:
    server = PagerDuty()
    yield server
    server.server.shutdown()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(
    tmp_path: Path, clock: Clock, target_dsn: str, pagerduty: PagerDuty, monkeypatch: pytest.MonkeyPatch
) -> Services:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("TARGET_DSN", target_dsn)
    monkeypatch.setenv(KEY_ENV, "R0UTINGKEY-not-stored")
    return make(tmp_path, clock, pagerduty.url)


def make(tmp_path: Path, clock: Clock, pagerduty_url: str) -> Services:
    """The window off: the incidents here are opened by hand."""
    return production_services(
        tmp_path,
        env_monitor={"pagerduty_routing_key_env": KEY_ENV, "pagerduty_url": pagerduty_url},
        policy={"monitor": {"window_minutes": 0}},
        clock=clock,
    )


@pytest.fixture
def ran(services: Services) -> int:
    plan_id = approved(services, FILE, "production")
    assert run_all(services, plan_id) is PlanState.COMPLETED
    return plan_id


def pages(services: Services) -> list[tuple[int, str, str]]:
    with services.db.session() as session:
        return [(p.level, p.role, p.why) for p in session.scalars(select(PageRecord).order_by(PageRecord.id))]


def direct_messages(services: Services) -> list[str]:
    """Who got a page directly, in order."""
    with services.db.session() as session:
        rows = session.scalars(
            select(OutboxRecord).where(OutboxRecord.kind == "choices").order_by(OutboxRecord.id)
        )
        return [row.payload["to"] for row in rows if row.payload.get("to")]


def later(services: Services, clock: Clock, minutes: float) -> list[str]:
    """Move time on and do what is due, as the leader's watch does."""
    clock.now += timedelta(minutes=minutes)
    done: list[str] = []
    for incident_id in services.incidents.due():
        done += services.incidents.escalate(incident_id)
    return done


def test_a_p2_pages_on_call_then_the_lead_then_asks_for_the_rollback_decision(
    services: Services, clock: Clock, ran: int
) -> None:
    incident_id = services.incidents.open(
        ran, kind=IncidentKind.MANUAL, severity="P2", reason="search is broken", actor="U0ONCALL"
    )
    assert pages(services) == [(0, "on_call", "opened")]
    assert direct_messages(services) == ["U0ONCALL"]
    assert later(services, clock, 4) == []
    assert later(services, clock, 1) == ["level 0 paged again"]  # every 5 minutes while unacknowledged
    assert later(services, clock, 10) == ["escalated to levels [1]"]  # 15 minutes: the Technical Lead
    assert direct_messages(services)[-1] == "U0TL"
    services.incidents.acknowledge(incident_id, user="U0TL")
    assert later(services, clock, 50) == []  # acknowledged: the CTO is not paged at the hour
    assert later(services, clock, 55) == ["rollback decision due: levels [1, 2] asked"]  # P2: 2 hours
    assert pages(services)[-2:] == [(1, "technical_lead", "decision_due"), (2, "cto", "decision_due")]
    assert later(services, clock, 60) == []  # asked once
    services.incidents.resolve(incident_id, user="U0CTO", resolution="fixed by a feature flag")
    assert services.incidents.due() == []
    with services.db.session() as session:
        incident = session.get(IncidentRecord, incident_id)
        assert incident is not None and (incident.state, incident.resolved_by) == ("resolved", "U0CTO")


def test_a_p1_unanswered_past_its_response_time_escalates_at_once(
    services: Services, clock: Clock, ran: int
) -> None:
    services.incidents.open(ran, kind=IncidentKind.MANUAL, severity="P1", reason="errors", actor="U0ONCALL")
    # P1's response time is 15 minutes, the lead's delay too: one page, not two
    assert later(services, clock, 15) == ["response time passed: level 1 paged"]
    assert [p for p in pages(services) if p[0] == 1] == [(1, "technical_lead", "response_due")]


def test_a_restarted_bot_fires_a_missed_escalation_exactly_once(
    tmp_path: Path, services: Services, clock: Clock, ran: int, target_dsn: str, pagerduty: PagerDuty
) -> None:
    services.incidents.open(ran, kind=IncidentKind.MANUAL, severity="P2", reason="slow", actor="U0ONCALL")
    clock.now += timedelta(minutes=16)  # the bot was down when the lead was due
    restarted = make(tmp_path, clock, pagerduty.url)
    due = restarted.incidents.due()
    assert len(due) == 1
    assert restarted.incidents.escalate(due[0]) == ["escalated to levels [1]"]
    assert restarted.incidents.escalate(due[0]) == []  # a second look (another thread, say) pages nobody
    assert [p for p in pages(restarted) if p[2] == "escalated"] == [(1, "technical_lead", "escalated")]


def test_a_p0_pages_every_level_at_once_and_rolls_back(
    services: Services, clock: Clock, ran: int, target_dsn: str
) -> None:
    services.incidents.open(
        ran, kind=IncidentKind.MANUAL, severity="P0", reason="data corruption in bookmarks", actor="U0ONCALL"
    )
    assert pages(services) == [
        (0, "on_call", "opened"),
        (1, "technical_lead", "opened"),
        (2, "cto", "opened"),
    ]
    assert services.approvals.status(ran)[0].state == PlanState.ROLLED_BACK
    with psycopg.connect(target_dsn) as conn:
        gone = conn.execute("SELECT to_regclass('nchat.nchat_message_bookmarks')").fetchone()
    assert gone == (None,)


def test_a_p3_pages_nobody(services: Services, clock: Clock, ran: int) -> None:
    services.incidents.open(ran, kind=IncidentKind.MANUAL, severity="P3", reason="a typo", actor="U0ONCALL")
    assert pages(services) == [] and later(services, clock, 120) == []


def test_only_the_chain_and_the_runners_answer_and_a_refusal_changes_nothing(
    services: Services, ran: int
) -> None:
    with pytest.raises(Forbidden, match="may answer incidents"):
        services.incidents.open(ran, kind=IncidentKind.MANUAL, severity="P2", reason="x", actor="U0QA1")
    incident_id = services.incidents.open(
        ran, kind=IncidentKind.MANUAL, severity="P2", reason="x", actor="U0ONCALL"
    )
    with pytest.raises(Forbidden):
        services.incidents.acknowledge(incident_id, user="U0QA1")
    services.incidents.acknowledge(incident_id, user="U0ONCALL")
    with pytest.raises(InvalidState, match="acknowledged already"):
        services.incidents.acknowledge(incident_id, user="U0TL")
    env = services.config.environment("production")
    (env.migrations_dir / "055_unrun.sql").write_text("CREATE TABLE nchat.unrun (id int);\n")
    unrun = services.planner.submit(
        env_name="production", file_arg="055_unrun.sql", author="U0PO", typed_in="C0"
    )
    assert unrun.plan is not None
    with pytest.raises(InvalidState, match="an incident is about a plan that ran"):
        services.incidents.open(
            unrun.plan.id, kind=IncidentKind.MANUAL, severity="P2", reason="x", actor="U0ONCALL"
        )


def test_a_rollback_refused_to_a_member_of_the_chain_leaves_the_run_going(services: Services) -> None:
    """The CTO answers incidents (the chain) but runs nothing on a plan he did not approve: his Roll back
    is refused, and the run under way is not told to stop."""
    plan_id = approved(services, FILE, "production")
    with services.db.session() as session:
        session.execute(update(PlanRecord).where(PlanRecord.id == plan_id).values(state=PlanState.RUNNING))
    with pytest.raises(Forbidden):
        services.incidents.order_rollback(plan_id, user="U0CTO", reason="errors", operator=False)
    with services.db.session() as session:
        assert session.get(PlanRecord, plan_id).abort_requested is False  # type: ignore[union-attr]


def test_ten_people_acknowledging_at_once_make_one_acknowledgement(services: Services, ran: int) -> None:
    incident_id = services.incidents.open(
        ran, kind=IncidentKind.MANUAL, severity="P2", reason="x", actor="U0ONCALL"
    )
    answerers = ["U0ONCALL", "U0TL", "U0CTO"] * 4  # the chain's people, each clicking more than once
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def click(user: str) -> None:
        start.wait()
        try:
            services.incidents.acknowledge(incident_id, user=user)
            outcomes.append("acknowledged")
        except InvalidState as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=click, args=(user,)) for user in answerers[:10]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["acknowledged"] + [f"incident #{incident_id} is acknowledged already"] * 9
    with services.db.session() as session:
        kinds = session.scalars(select(EventRecord.kind).where(EventRecord.plan_id == ran)).all()
        told = session.scalars(select(OutboxRecord.payload).where(OutboxRecord.kind == "thread")).all()
    assert kinds.count("incident_acknowledged") == 1
    assert sum("acknowledged" in p.get("text", "") for p in told) == 1


def test_pagerduty_gets_a_trigger_per_level_and_the_key_is_never_stored(
    services: Services, clock: Clock, ran: int, pagerduty: PagerDuty
) -> None:
    services.incidents.open(ran, kind=IncidentKind.MANUAL, severity="P1", reason="errors", actor="U0ONCALL")
    later(services, clock, 15)
    quiet = ConsoleNotifier(lambda _: None)
    Deliverer(db=services.db, config=services.config, notifier=quiet, clock=clock).deliver_due()
    assert [e["payload"]["custom_details"]["role"] for e in pagerduty.events] == ["on_call", "technical_lead"]
    assert {e["routing_key"] for e in pagerduty.events} == {"R0UTINGKEY-not-stored"}
    assert {e["payload"]["severity"] for e in pagerduty.events} == {"error"}
    with services.db.session() as session:
        stored = json.dumps([r.payload for r in session.scalars(select(OutboxRecord))])
    assert "R0UTINGKEY" not in stored
