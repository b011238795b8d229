"""Rehearsals as the bot runs them, on a real PostgreSQL: asked for, carried out on a scratch copy of the
target, told in the plan's thread, and the gate they are: a production High plan is approved only once a
rehearsal of its exact migration and rollback bytes has passed."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from bot.app import Services, build_services
from bot.config import Settings, parse_config
from bot.demo import load_example_schema
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.rehearsal_report import report_lines
from bot.execution.report import ticked
from bot.report import approval_lines
from bot.states import PlanState
from storage.models import EventRecord, OutboxRecord, RehearsalRecord
from tests.conftest import EXAMPLES
from tests.execution.test_runner import ROLES

AUTHOR = "U0AUTHOR"
SIGNERS = {
    "technical_lead": "U0TL",
    "product_owner": "U0PO",
    "cto": "U0CTO",
    "architecture_review": "U0ARCH",
    "security_review": "U0SEC",
}
FILE = "090_drop_legacy_field.sql"
ROLLBACK = "090_drop_legacy_field.rollback.sql"
DROP = "SET lock_timeout = '5s';\nALTER TABLE nchat.nchat_users DROP COLUMN legacy_field;\n"
GIVE_BACK = "ALTER TABLE nchat.nchat_users ADD COLUMN legacy_field text;\n"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    (path / FILE).write_text(DROP)
    (path / ROLLBACK).write_text(GIVE_BACK)
    return path


@pytest.fixture
def services(
    tmp_path: Path, migrations: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("TARGET_DSN", target_dsn)
    env = {"dsn_env": "TARGET_DSN", "migrations_dir": str(migrations)}
    data = {"environments": {"production": env}, "roles": ROLES}
    config = parse_config(data, tmp_path)
    yield build_services(Settings(database_url=f"sqlite:///{tmp_path}/state.db"), config)


def planned(services: Services) -> int:
    plan = services.planner.submit(
        env_name="production", file_arg=FILE, author=AUTHOR, typed_in="C0HERE"
    ).plan
    assert plan is not None
    return plan.id


def sign_all(services: Services, plan_id: int) -> None:
    for slot in services.approvals.status(plan_id)[1].missing:
        services.approvals.approve(plan_id, user=SIGNERS[slot.name], slot=slot.name)


def rehearsed(services: Services, plan_id: int, **options: object) -> RehearsalRecord:
    rehearsal_id = services.rehearsals.order(plan_id, user=AUTHOR, **options)  # type: ignore[arg-type]
    return services.rehearsals.run(rehearsal_id)


def thread(services: Services, plan_id: int) -> list[str]:
    with services.db.session() as session:
        rows = session.scalars(select(OutboxRecord).where(OutboxRecord.plan_id == plan_id))
        return [r.payload.get("text", "") for r in rows if r.kind == "thread"]


def state(services: Services, plan_id: int) -> PlanState:
    return PlanState(services.approvals.status(plan_id)[0].state)


def test_a_production_high_plan_is_approved_only_once_its_rehearsal_passes(
    services: Services, target_dsn: str
) -> None:
    plan_id = planned(services)
    sign_all(services, plan_id)
    _, status = services.approvals.status(plan_id)
    assert not status.missing and status.rehearsal_missing
    assert state(services, plan_id) is PlanState.AWAITING_APPROVAL
    assert any("approved once a rehearsal" in t for t in thread(services, plan_id))

    record = rehearsed(services, plan_id, rows=200)
    assert record.state == "passed", report_lines(record)
    assert state(services, plan_id) is PlanState.APPROVED
    lines = report_lines(record)
    assert "passed" in lines[0] and "200 synthetic rows" not in lines[0]  # the target's own rows were copied
    assert any("ACCESS EXCLUSIVE on nchat.nchat_users" in line for line in lines)
    assert any("Rollback script generated and tested" in line for line in lines)
    assert any("is *approved*" in t and "rehearsal passed" in t for t in thread(services, plan_id))
    with services.db.session() as session:
        kinds = [e.kind for e in session.scalars(select(EventRecord).where(EventRecord.plan_id == plan_id))]
        assert kinds[-4:] == ["rehearsal_queued", "rehearsal_started", "rehearsal_passed", "approved"]
    with psycopg.connect(target_dsn) as conn:  # the target itself is untouched
        assert conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'nchat_users' "
            "AND column_name = 'legacy_field'"
        ).fetchone() == (1,)
        scratch = record.report["scratch"]["name"]  # dropped afterwards
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (scratch,)).fetchone() is None
    assert "Rollback script generated and tested" in ticked(services.approvals.status(plan_id)[0])


def test_a_rehearsal_before_the_sign_offs_lets_the_last_one_approve(services: Services) -> None:
    plan_id = planned(services)
    assert rehearsed(services, plan_id).state == "passed"
    assert state(services, plan_id) is PlanState.AWAITING_APPROVAL  # nobody signed yet
    sign_all(services, plan_id)
    assert state(services, plan_id) is PlanState.APPROVED


def test_a_rollback_that_leaves_a_difference_fails_and_keeps_the_gate_shut(
    services: Services, migrations: Path
) -> None:
    (migrations / ROLLBACK).write_text("ALTER TABLE nchat.nchat_users ADD COLUMN legacy_field varchar(10);\n")
    plan_id = planned(services)
    sign_all(services, plan_id)
    record = rehearsed(services, plan_id)
    assert record.state == "failed"
    text = "\n".join(report_lines(record))
    assert "nchat.nchat_users.legacy_field" in text and "Differences after the rollback" in text
    plan, status = services.approvals.status(plan_id)
    assert plan.state == PlanState.AWAITING_APPROVAL and status.rehearsal_missing
    assert any(line.startswith("⏳ Rehearsal report") for line in approval_lines(status))


def test_a_changed_rollback_needs_a_new_rehearsal(services: Services, migrations: Path) -> None:
    first = planned(services)
    assert rehearsed(services, first).state == "passed"
    (migrations / ROLLBACK).write_text(GIVE_BACK + "-- reviewed\n")
    with pytest.raises(InvalidState, match="rollback script of plan #1 changed"):
        services.rehearsals.order(first, user=AUTHOR)
    second = planned(services)  # the author plans the changed file again
    assert second != first and state(services, first) is PlanState.SUPERSEDED
    sign_all(services, second)
    _, status = services.approvals.status(second)
    assert status.rehearsal is None and state(services, second) is PlanState.AWAITING_APPROVAL
    assert rehearsed(services, second).state == "passed"
    assert state(services, second) is PlanState.APPROVED


def test_who_may_rehearse_and_what(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_id = planned(services)
    with pytest.raises(Forbidden, match="only the author of plan"):
        services.rehearsals.order(plan_id, user="U0STRANGER")
    with pytest.raises(UserError, match="rows: from 1"):
        services.rehearsals.order(plan_id, user=AUTHOR, rows=0)
    assert services.rehearsals.order(plan_id, user="U0TL") > 0  # a runner of the plan may
    monkeypatch.delenv("TARGET_DSN")
    with pytest.raises(UserError, match="no target database to copy"):
        services.rehearsals.order(plan_id, user=AUTHOR)


def test_a_rehearsal_the_bot_died_in_is_interrupted_and_runs_once(services: Services) -> None:
    plan_id = planned(services)
    rehearsal_id = services.rehearsals.order(plan_id, user=AUTHOR)
    with services.db.session() as session:
        record = session.get(RehearsalRecord, rehearsal_id)
        assert record is not None
        record.state = "running"  # as a bot killed mid-rehearsal left it
    assert services.rehearsals.recover() == [rehearsal_id]
    with services.db.session() as session:
        record = session.get(RehearsalRecord, rehearsal_id)
        assert record is not None and record.state == "interrupted"
    with pytest.raises(InvalidState, match="runs once"):
        services.rehearsals.run(rehearsal_id)
    assert any("interrupted by a restart" in t for t in thread(services, plan_id))


def test_ten_people_asking_at_once_queue_one_rehearsal(services: Services) -> None:
    plan_id = planned(services)
    users = [AUTHOR, "U0TL", "U0ONCALL"] * 3 + [AUTHOR]

    def ask(user: str) -> int | str:
        try:
            return services.rehearsals.order(plan_id, user=user)
        except InvalidState as err:
            return str(err)

    with ThreadPoolExecutor(len(users)) as pool:
        answers = list(pool.map(ask, users))
    queued = [a for a in answers if isinstance(a, int)]
    assert len(queued) == 1, answers
    assert all("under way already" in a for a in answers if isinstance(a, str))
    assert rehearsed_now(services, queued[0]).state == "passed"
    assert services.rehearsals.order(plan_id, user=AUTHOR) > queued[0]  # done: another may be asked for


def rehearsed_now(services: Services, rehearsal_id: int) -> RehearsalRecord:
    return services.rehearsals.run(rehearsal_id)
