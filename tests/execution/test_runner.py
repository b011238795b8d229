"""The procedure run on a real PostgreSQL with real pg_dump/pg_restore: every step, failures that roll
back exactly what was applied, a failed rollback that the backup repairs, a lock held by someone else,
and a run interrupted by the bot's death."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from bot import jobs as bot_jobs
from bot.app import Services, build_services
from bot.config import Settings, parse_config
from bot.demo import load_example_schema
from bot.errors import Forbidden, InvalidState
from bot.execution import jobs as execution_jobs
from bot.execution import ledger
from bot.execution.steps import StepKind, StepState
from bot.sql.fingerprint import fingerprint_diff, schema_fingerprint
from bot.states import PlanState
from storage.models import EventRecord, OutboxRecord, StepRecord
from tests.conftest import EXAMPLES

AUTHOR = "U0AUTHOR"
ROLES = {
    "technical_lead": {"users": ["U0TL"]},
    "product_owner": {"users": ["U0PO"]},
    "cto": {"users": ["U0CTO"]},
    "qa": {"users": ["U0QA1", "U0QA2"]},
    "architect": {"users": ["U0ARCH"]},
    "security": {"users": ["U0SEC"]},
    "on_call": {"users": ["U0ONCALL"]},
}
MAINTENANCE = ["python3", "-c", "print('maintenance switched')"]


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    for name in ("054_add_message_bookmarks.sql", "054_add_message_bookmarks.rollback.sql"):
        shutil.copy(EXAMPLES / "migrations" / name, path / name)
    return path


@pytest.fixture
def services(
    tmp_path: Path, migrations: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("TARGET_DSN", target_dsn)
    env = {
        "dsn_env": "TARGET_DSN",
        "migrations_dir": str(migrations),
        "backup_dir": str(tmp_path / "backups"),
    }
    data = {
        "environments": {"production": {**env, "procedure": "standard"}, "staging": env},
        "roles": ROLES,
        "runbook": {"maintenance_on": MAINTENANCE, "maintenance_off": MAINTENANCE},
        "policy": {
            "execution": {
                "lock_timeout": "1s",
                "lock_retries": 5,
                "lock_retry_backoff_seconds": 0.2,
                "backfill": {"batch_rows": 5000, "pause_seconds": 0},
            }
        },
    }
    config = parse_config(data, tmp_path)
    yield build_services(Settings(database_url=f"sqlite:///{tmp_path}/state.db"), config)


def approved(services: Services, file: str, env: str = "staging") -> int:
    plan = services.planner.submit(env_name=env, file_arg=file, author=AUTHOR, typed_in="C0HERE").plan
    assert plan is not None
    _, status = services.approvals.status(plan.id)
    signers = iter(["U0TL", "U0PO", "U0CTO", "U0QA1", "U0QA2", "U0ARCH", "U0SEC", "U0ONCALL"])
    for slot in status.missing:
        users = ROLES.get(slot.role, {}).get("users") if slot.role != "peer" else None
        user = next(u for u in signers if slot.role == "peer" or u in (users or []))
        services.approvals.approve(plan.id, user=user, slot=slot.name)
    assert services.approvals.status(plan.id)[1].state is PlanState.APPROVED
    return plan.id


def run_all(services: Services, plan_id: int, operator: str = "ops") -> PlanState:
    return services.runner.execute(
        services.runner.order_run(plan_id, user=operator, what="all", operator=True)
    )


def errors(services: Services, plan_id: int) -> list[tuple[str, str | None]]:
    """The failed steps and why: what an assertion about the plan's state should show when it fails."""
    with services.db.session() as session:
        return [(s.step, s.error) for s in services.runner.steps(session, plan_id) if s.error]


def step_states(services: Services, plan_id: int) -> list[tuple[str, str]]:
    with services.db.session() as session:
        return [(s.step, s.state) for s in services.runner.steps(session, plan_id)]


def fingerprint(dsn: str) -> object:
    with psycopg.connect(dsn) as conn:
        return schema_fingerprint(conn)


def test_the_standard_procedure_runs_every_step_and_records_the_migration(
    services: Services, target_dsn: str
) -> None:
    plan_id = approved(services, "054_add_message_bookmarks.sql", "production")
    assert run_all(services, plan_id) is PlanState.MONITORING  # the hour after it is watched
    assert step_states(services, plan_id) == [
        (kind, StepState.DONE.value)
        for kind in [
            "backup",
            "verify_backup",
            "maintenance_on",
            "wait_for_connections",
            "apply",
            "verify",
            "integrity_checks",
            "maintenance_off",
        ]
    ]
    entry = ledger.applied(target_dsn, file_name="054_add_message_bookmarks.sql")
    assert entry is not None and entry.plan_id == plan_id and entry.operator == "ops"
    with services.db.session() as session:
        steps = {s.step: s for s in services.runner.steps(session, plan_id)}
        assert Path(steps["backup"].output["path"]).exists()
        assert steps["apply"].output["committed"] and steps["apply"].output["timings"]
        kinds = [e.kind for e in session.scalars(select(EventRecord).where(EventRecord.plan_id == plan_id))]
        step_lines = session.scalars(select(OutboxRecord).where(OutboxRecord.kind == "step")).all()
    assert "run_started" in kinds and "monitor_opened" in kinds and len(step_lines) >= 8
    assert kinds.index("monitor_baseline") < kinds.index("monitor_opened")
    with pytest.raises(InvalidState, match="is monitoring"):
        services.runner.order_run(plan_id, user="ops", operator=True)


def test_only_runners_may_run_and_a_plan_runs_only_once_approved(services: Services) -> None:
    plan = services.planner.submit(
        env_name="staging", file_arg="054_add_message_bookmarks.sql", author=AUTHOR, typed_in="C0HERE"
    ).plan
    assert plan is not None
    with pytest.raises(InvalidState, match="only an approved plan runs"):
        services.runner.order_run(plan.id, user="U0TL")
    plan_id = approved(services, "054_add_message_bookmarks.sql")
    with pytest.raises(Forbidden, match="only Technical Lead or On Call may run"):
        services.runner.order_run(plan_id, user="U0QA1")
    assert services.runner.order_run(plan_id, user="U0ONCALL").steps == (StepKind.BACKUP,)


def test_a_migration_failing_half_way_leaves_the_schema_exactly_as_before(
    services: Services, migrations: Path, target_dsn: str
) -> None:
    (migrations / "080_half.sql").write_text(
        "ALTER TABLE nchat.nchat_users ADD COLUMN nickname text;\n"
        "CREATE INDEX CONCURRENTLY idx_half ON nchat.nchat_users (no_such_column);\n"
    )
    before = fingerprint(target_dsn)
    plan_id = approved(services, "080_half.sql")
    assert run_all(services, plan_id) is PlanState.ROLLED_BACK
    assert fingerprint_diff(before, fingerprint(target_dsn)) == []
    states = dict(step_states(services, plan_id))
    assert states["apply"] == "failed" and states["rollback"] == "done"
    assert ledger.applied(target_dsn, file_name="080_half.sql") is None


def test_a_failed_rollback_is_repaired_by_restoring_the_backup(
    services: Services, migrations: Path, target_dsn: str
) -> None:
    (migrations / "081_wipe.sql").write_text(
        "UPDATE nchat.nchat_channels SET name = 'wiped-' || id;\n"
        "ALTER TABLE nchat.nchat_channels ADD COLUMN z int;\n"
    )
    (migrations / "081_wipe.rollback.sql").write_text("ALTER TABLE nchat.no_such_table DROP COLUMN z;\n")
    with psycopg.connect(target_dsn) as conn:
        before = conn.execute("SELECT * FROM nchat.nchat_channels ORDER BY 1").fetchall()
    plan_id = approved(services, "081_wipe.sql")
    assert run_all(services, plan_id) is PlanState.MONITORING, errors(services, plan_id)
    rollback = services.runner.order_rollback(plan_id, user="ops", reason="names are wrong", operator=True)
    assert services.runner.execute(rollback) is PlanState.ROLLBACK_FAILED
    assert "drops and recreates every object" in services.runner.restore_warning(plan_id)
    restore = services.runner.order_restore(plan_id, user="ops", confirmed=True, operator=True)
    assert services.runner.execute(restore) is PlanState.RESTORED
    with psycopg.connect(target_dsn) as conn:
        after = conn.execute("SELECT id, name FROM nchat.nchat_channels ORDER BY 1").fetchall()
    assert after == [(row[0], row[1]) for row in before]  # the names are back, row by row


def test_a_lock_held_by_another_session_is_shown_and_the_retry_succeeds(
    services: Services, migrations: Path, target_dsn: str
) -> None:
    (migrations / "082_lock.sql").write_text(
        "ALTER TABLE nchat.nchat_channels ADD COLUMN topic_color text;\n"
    )
    plan_id = approved(services, "082_lock.sql")
    holder = psycopg.connect(target_dsn, application_name="nightly-report")
    pid = holder.info.backend_pid
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE nchat.nchat_channels IN ACCESS SHARE MODE")

    def release() -> None:
        time.sleep(2.5)
        holder.execute("COMMIT")

    threading.Thread(target=release, daemon=True).start()
    try:
        order = services.runner.order_run(plan_id, user="ops", what="apply", operator=True)
        assert services.runner.execute(order) is PlanState.RUNNING  # paused after apply: more steps remain
    finally:
        holder.close()
    with services.db.session() as session:
        waits = session.scalars(
            select(EventRecord).where(EventRecord.plan_id == plan_id, EventRecord.kind == "lock_wait")
        ).all()
        assert any("nightly-report" in e.message and f"pid {pid}" in e.message for e in waits)
        apply = services.runner.latest(session, plan_id)[StepKind.APPLY]
        assert apply.state == StepState.DONE and apply.output["lock_retries"] >= 1


def test_a_step_running_when_the_bot_died_is_interrupted_not_rerun(services: Services) -> None:
    plan_id = approved(services, "054_add_message_bookmarks.sql")
    order = services.runner.order_run(plan_id, user="ops", operator=True)
    services.runner._start(order, StepKind.BACKUP)  # the bot dies right after committing the start
    with services.db.session() as session:
        step = session.scalars(select(StepRecord)).one()
        step.output = {"runner": "another-host:1"}
    assert services.runner.recover() == [plan_id]
    assert step_states(services, plan_id) == [("backup", StepState.INTERRUPTED.value)]
    assert services.runner.recover() == []  # said once, never re-run
    with services.db.session() as session:
        news = [r.payload.get("text", "") for r in session.scalars(select(OutboxRecord))]
    assert any("interrupted" in text and "will not run again" in text for text in news)
    assert services.runner.order_run(plan_id, user="ops", operator=True).steps == (StepKind.BACKUP,)


def test_a_data_migration_update_runs_in_batches_and_resumes_where_it_stopped(
    services: Services, migrations: Path, target_dsn: str
) -> None:
    (migrations / "083_backfill.sql").write_text(
        "SET lock_timeout = '2s';\n"
        "UPDATE nchat.nchat_messages SET edited_at = created_at WHERE edited_at IS NULL;\n"
    )
    plan_id = approved(services, "083_backfill.sql")
    order = services.runner.order_run(plan_id, user="ops", what="apply", operator=True)
    batches = iter(range(1000))
    services.runner.execute(order, cancelled=lambda: next(batches) >= 2)  # stop after two batches
    with services.db.session() as session:
        first = services.runner.latest(session, plan_id)[StepKind.APPLY]
        assert first.state == StepState.FAILED and "stopped after 2 batch(es)" in (first.error or "")
        news = [r.payload.get("text", "") for r in session.scalars(select(OutboxRecord))]
        assert any("batches so far are committed" in text for text in news)
        assert first.output["saved"]["backfill:0"]  # the last batch committed
    order = services.runner.order_run(plan_id, user="ops", what="apply", operator=True)
    services.runner.execute(order)
    with services.db.session() as session:
        second = services.runner.latest(session, plan_id)[StepKind.APPLY]
    assert second.state == StepState.DONE and "batch(es)" in second.output["summary"], errors(
        services, plan_id
    )
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM nchat.nchat_messages WHERE edited_at IS NULL"
        ).fetchone() == (0,)
    assert ledger.applied(target_dsn, file_name="083_backfill.sql") is not None


def test_a_run_order_left_in_the_job_store_is_not_carried_out_twice(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APScheduler removes a one-off job just after starting it; a scheduler stopped in between leaves it
    in the store, and the next leader starts it again: the order's key makes the second start a no-op."""
    plan_id = approved(services, "054_add_message_bookmarks.sql")
    monkeypatch.setattr(bot_jobs, "_services", services)
    order = services.runner.order_run(plan_id, user="ops", what="backup", operator=True)
    args = (*order.to_args(), "run-order-test")
    execution_jobs.execute(*args)
    execution_jobs.execute(*args)  # the same job, started again after a restart
    assert step_states(services, plan_id) == [("backup", StepState.DONE.value)]
    execution_jobs.execute(*order.to_args(), "run-order-another")  # a new order runs, in the same second
    assert step_states(services, plan_id) == [("backup", StepState.DONE.value)] * 2, errors(services, plan_id)
