"""The post-migration checklist comes back after 1 hour, 24 hours and 7 days, once each, with what the
bot measures filled in and a button for each item left; ticking is for the chain and the runners. Plan
054 really runs on PostgreSQL; the error rate comes from a command; the clock is moved by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Services
from bot.demo import load_example_schema
from bot.errors import Forbidden
from bot.states import PlanState
from storage.models import EventRecord, OutboxRecord
from tests.clock import Clock
from tests.conftest import EXAMPLES
from tests.execution.test_runner import approved, run_all
from tests.monitor.plans import FILE, file_source, production_services


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(tmp_path: Path, clock: Clock, target_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Services:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("TARGET_DSN", target_dsn)
    rate = tmp_path / "error_rate"
    rate.write_text("0.4\n")
    source = file_source(rate)
    policy = {"monitor": {"window_minutes": 10, "interval_seconds": 60}}
    return production_services(
        tmp_path, env_monitor={"sources": {"error_rate": source}}, policy=policy, clock=clock
    )


def later(services: Services, clock: Clock, minutes: float, step: float = 1) -> None:
    """Move the clock ``minutes`` on, a ``step`` at a time, doing what falls due at each (the watch)."""
    for _ in range(int(minutes / step)):
        clock.now += timedelta(minutes=step)
        for monitor_id in services.monitors.due():
            services.monitors.tick(monitor_id)


def reminders(services: Services) -> list[dict[str, object]]:
    with services.db.session() as session:
        rows = session.scalars(select(OutboxRecord).where(OutboxRecord.kind == "choices"))
        return [row.payload for row in rows]


def test_the_checklist_comes_back_three_times_with_what_is_measured(services: Services, clock: Clock) -> None:
    plan_id = approved(services, FILE, "production")
    assert run_all(services, plan_id) is PlanState.MONITORING
    later(services, clock, 12)
    assert services.approvals.status(plan_id)[0].state == PlanState.COMPLETED  # all clear after 10 minutes
    assert reminders(services) == []

    later(services, clock, 50)  # an hour after apply
    [first] = reminders(services)
    text = str(first["text"])
    assert text.startswith(f"📋 *Post-migration checklist* of plan #{plan_id}: Immediate (0-1 hour)")
    assert "✅ 2. Error rate within normal range (&lt;1%) · 0.4% (normal &lt; 1%)" in text  # Slack-escaped
    assert "✅ 5. No deadlocks or lock timeouts · 0 deadlocks since the migration" in text
    assert "☐ 6. Critical user flows tested manually" in text
    buttons = [value for _, value in first["choices"]]  # type: ignore[attr-defined]
    assert f"{plan_id}:0:1" not in buttons and f"{plan_id}:0:5" in buttons  # measured items need no button

    assert services.monitors.tick_item(f"{plan_id}:0:5", user="U0TL") == "Critical user flows tested manually"
    with pytest.raises(Forbidden):
        services.monitors.tick_item(f"{plan_id}:0:5", user="U0QA1")
    later(services, clock, 60 * 23, step=60)
    later(services, clock, 60 * 24 * 7, step=60)
    sections = [str(r["text"]).split(": ", 1)[1].split("\n")[0] for r in reminders(services)]
    assert sections == [
        "Immediate (0-1 hour)",
        "Short-term (1-24 hours)",
        "Long-term (1-7 days)",
    ]  # once each
    with services.db.session() as session:
        kinds = session.scalars(select(EventRecord.kind).where(EventRecord.plan_id == plan_id)).all()
    assert kinds.count("checklist_reminder") == 3 and kinds.count("checklist_ticked") == 1


def test_a_rolled_back_plan_is_not_reminded(services: Services, clock: Clock) -> None:
    plan_id = approved(services, FILE, "production")
    run_all(services, plan_id)
    later(services, clock, 2)
    services.runner.execute(services.runner.order_rollback(plan_id, user="ops", reason="x", operator=True))
    later(services, clock, 60 * 25, step=60)
    assert services.approvals.status(plan_id)[0].state == PlanState.ROLLED_BACK
    assert reminders(services) == []
