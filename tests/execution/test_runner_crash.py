"""A bot killed (SIGKILL) in the middle of a step, then restarted: the step is interrupted, never re-run by
itself, and the plan says what it still owes. All from outside: the CLI runs in a subprocess and is
killed there; the restart is what a new leader does first (``recover``); the target is a real PostgreSQL
dumped by the real pg_dump."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import select

from bot.app import Services
from bot.embedded import client_tool, dsn_for_database
from bot.execution import ledger
from bot.execution.steps import APPLICATION_NAME, StepKind, StepState
from bot.plans import get_plan
from bot.states import PlanState
from storage.models import OutboxRecord
from tests.conftest import EXAMPLES
from tests.execution.crash import Bot, alive, kill, slowed_tool, wait_for
from tests.execution.test_runner import ROLES, approved

OPERATOR = "dana"
BOOKMARKS = "054_add_message_bookmarks.sql"
# The first pg_dump sleeps this long before it dumps: the bot is killed long before.
SLOW_DUMP_SECONDS = 30
# The slow migration: a column added, then a sleep in the same transaction (its lock held meanwhile).
SLOW_MIGRATION = "090_slow_column.sql"
APPLY_SLEEP_SECONDS = 6
# A session whose client died should end about this soon, not when its statement ends.
ORPHAN_GRACE_SECONDS = 3


@pytest.fixture
def children() -> Iterator[list[int]]:
    """Pids of the processes a test started: killed at its end whatever happened, so none outlives it."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def make_bot(tmp_path: Path, target_dsn: str, *, pg_dump: Path | None = None) -> Bot:
    """The standard procedure (with maintenance mode) on production; a hand-written rollback for each
    migration; the maintenance runbook harmless commands."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for name in (BOOKMARKS, BOOKMARKS.replace(".sql", ".rollback.sql")):
        (migrations / name).write_bytes((EXAMPLES / "migrations" / name).read_bytes())
    (migrations / SLOW_MIGRATION).write_text(
        "ALTER TABLE nchat.nchat_channels ADD COLUMN crash_probe int;\n"
        f"SELECT pg_sleep({APPLY_SLEEP_SECONDS});\n"
    )
    (migrations / SLOW_MIGRATION.replace(".sql", ".rollback.sql")).write_text(
        "ALTER TABLE nchat.nchat_channels DROP COLUMN crash_probe;\n"
    )
    env = {
        "dsn_env": "TARGET_DSN",
        "migrations_dir": str(migrations),
        "backup_dir": str(tmp_path / "backups"),
        "procedure": "standard",
    }
    return Bot.write(
        tmp_path,
        target_dsn,
        {
            "environments": {"production": env},
            "roles": ROLES,
            "runbook": {
                "maintenance_on": ["python3", "-c", "print('on')"],
                "maintenance_off": ["python3", "-c", "print('off')"],
            },
            "tools": {"pg_dump": str(pg_dump)} if pg_dump else {},
            "policy": {"execution": {"connection_drain_timeout_seconds": 10}},
        },
    )


def steps(services: Services, plan_id: int) -> list[tuple[str, int, str]]:
    with services.db.session() as session:
        return [(s.step, s.attempt, s.state) for s in services.runner.steps(session, plan_id)]


def running(services: Services, plan_id: int, kind: StepKind) -> Callable[[], bool]:
    def ready() -> bool:
        with services.db.session() as session:
            step = services.runner.latest(session, plan_id).get(kind)
            return step is not None and step.state == StepState.RUNNING

    return ready


def plan_state(services: Services, plan_id: int) -> PlanState:
    with services.db.session() as session:
        return PlanState(get_plan(session, plan_id).state)


def owed(services: Services, plan_id: int) -> list[str]:
    with services.db.session() as session:
        return services.runner.owed(session, get_plan(session, plan_id))


def thread(services: Services) -> list[str]:
    """What the bot owes the plan's Slack thread, oldest first."""
    with services.db.session() as session:
        rows = session.scalars(
            select(OutboxRecord).where(OutboxRecord.kind == "thread").order_by(OutboxRecord.id)
        )
        return [row.payload.get("text", "") for row in rows]


def backup_running(
    tmp_path: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> tuple[Bot, int, subprocess.Popen[str], int]:
    """A bot's CLI caught in its backup, pg_dump started: the bot, the plan, the CLI, pg_dump's pid."""
    pg_dump, pid_file = slowed_tool(tmp_path, client_tool("pg_dump"), SLOW_DUMP_SECONDS)
    bot = make_bot(tmp_path, target_dsn, pg_dump=pg_dump)
    monkeypatch.setenv("TARGET_DSN", target_dsn)  # the planner here reads the target's catalog
    services = bot.services()
    plan_id = approved(services, BOOKMARKS, "production")
    proc = bot.start("run", str(plan_id), "--step", "backup", "--operator", OPERATOR)
    children.append(proc.pid)
    wait_for("backup running", running(services, plan_id, StepKind.BACKUP), proc)
    wait_for("pg_dump started", pid_file.exists, proc)
    dump = int(pid_file.read_text())
    children.append(dump)  # its own process group (run_command)
    assert alive(dump)
    return bot, plan_id, proc, dump


def killed_during_backup(
    tmp_path: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> tuple[Bot, int, int]:
    """A bot killed while its pg_dump runs: the bot, the plan, and the pid of the pg_dump it left."""
    bot, plan_id, proc, dump = backup_running(tmp_path, target_dsn, monkeypatch, children)
    kill(proc)
    # what the dead bot left in its store
    assert steps(bot.services(), plan_id) == [("backup", 1, "running")]
    return bot, plan_id, dump


def test_a_bot_killed_during_the_backup_leaves_it_interrupted_and_the_retry_succeeds(
    tmp_path: Path, nchat_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    bot, plan_id, dump = killed_during_backup(tmp_path, nchat_dsn, monkeypatch, children)
    with contextlib.suppress(ProcessLookupError):  # the dead bot's pg_dump (see the next test)
        os.killpg(dump, signal.SIGKILL)

    restarted = bot.services()
    assert restarted.runner.recover() == [plan_id]
    assert steps(restarted, plan_id) == [("backup", 1, "interrupted")]  # not re-run
    assert plan_state(restarted, plan_id) is PlanState.RUNNING
    told = [line for line in thread(restarted) if "interrupted" in line]
    assert len(told) == 1 and "will not run again by itself" in told[0], told
    assert f"run {plan_id} backup" in told[0]  # and how to retry it
    said = thread(restarted)
    assert restarted.runner.recover() == []  # said once
    assert steps(restarted, plan_id) == [("backup", 1, "interrupted")] and thread(restarted) == said
    assert not list((tmp_path / "backups").rglob("*.dump"))  # the killed dump left no file behind

    status = bot.cli("status", str(plan_id))
    assert status.returncode == 0, status.stderr
    assert f"#{plan_id}" in status.stdout and ": running ·" in status.stdout, status.stdout

    again = bot.cli("run", str(plan_id), "--step", "backup", "--operator", OPERATOR)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(attempt 2) · done" in again.stdout, again.stdout
    assert steps(restarted, plan_id) == [("backup", 1, "interrupted"), ("backup", 2, "done")]
    assert plan_state(restarted, plan_id) is PlanState.RUNNING  # paused: the other steps remain


def test_the_pg_dump_of_a_killed_bot_does_not_outlive_the_restart(
    tmp_path: Path, nchat_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    bot, plan_id, dump = killed_during_backup(tmp_path, nchat_dsn, monkeypatch, children)
    assert bot.services().runner.recover() == [plan_id]
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while alive(dump) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(dump), "the dead bot's pg_dump still runs, recorded by no step"


def test_a_restart_leaves_alone_a_step_another_live_process_runs(
    tmp_path: Path, nchat_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    bot, plan_id, _, _ = backup_running(tmp_path, nchat_dsn, monkeypatch, children)
    # a serve leader taking over while an operator's CLI runs the backup
    restarted = bot.services()
    assert restarted.runner.recover() == []
    assert steps(restarted, plan_id) == [("backup", 1, "running")]
    assert not [line for line in thread(restarted) if "interrupted" in line]


def target_sessions(admin_dsn: str, dbname: str) -> list[tuple[int, str, str]]:
    """The bot's sessions on the target database: pid, state, query."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (dbname, APPLICATION_NAME),
        ).fetchall()
    return [(int(pid), str(state), str(query)) for pid, state, query in rows]


def exclusive_holders(admin_dsn: str, dbname: str, table: str) -> list[int]:
    """Sessions holding ACCESS EXCLUSIVE on ``table`` of the target (pg_locks on the admin connection
    sees every database's locks; the relation is matched by name through the target's catalog)."""
    with psycopg.connect(dsn_for_database(admin_dsn, dbname), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE relation = %s::regclass AND mode = 'AccessExclusiveLock' "
            "AND granted",
            (table,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def killed_during_apply(
    tmp_path: Path, target_dsn: str, admin_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> tuple[Bot, int, int]:
    """A bot killed while the migration's transaction runs on the target (after maintenance mode went on):
    the bot, the plan, and the pid of the target session it left."""
    bot = make_bot(tmp_path, target_dsn)
    monkeypatch.setenv("TARGET_DSN", target_dsn)
    services = bot.services()
    plan_id = approved(services, SLOW_MIGRATION, "production")
    dbname = str(conninfo_to_dict(target_dsn)["dbname"])
    proc = bot.start("run", str(plan_id), "--all", "--operator", OPERATOR)
    children.append(proc.pid)
    wait_for("apply running", running(services, plan_id, StepKind.APPLY), proc)
    wait_for(
        "the migration's sleep running on the target",
        lambda: any(s == "active" and "pg_sleep" in q for _, s, q in target_sessions(admin_dsn, dbname)),
        proc,
    )
    (session,) = [pid for pid, _, q in target_sessions(admin_dsn, dbname) if "pg_sleep" in q]
    # the ALTER TABLE before it, in the same transaction, holds its lock
    assert exclusive_holders(admin_dsn, dbname, "nchat.nchat_channels") == [session]
    kill(proc)
    assert [s[:2] for s in steps(services, plan_id)] == [
        (kind, 1) for kind in ("backup", "verify_backup", "maintenance_on", "wait_for_connections", "apply")
    ]
    assert steps(services, plan_id)[-1][2] == "running"
    return bot, plan_id, session


def column_exists(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = 'nchat' "
                "AND table_name = 'nchat_channels' AND column_name = 'crash_probe'"
            ).fetchone()
        )


def test_a_bot_killed_during_apply_leaves_nothing_applied_and_owes_the_application(
    tmp_path: Path, nchat_dsn: str, pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    bot, plan_id, _ = killed_during_apply(tmp_path, nchat_dsn, pg_admin_dsn, monkeypatch, children)
    dbname = str(conninfo_to_dict(nchat_dsn)["dbname"])

    restarted = bot.services()
    assert restarted.runner.recover() == [plan_id]
    assert steps(restarted, plan_id)[-1] == ("apply", 1, "interrupted")
    assert [s for s in steps(restarted, plan_id) if s[2] != "done"] == [("apply", 1, "interrupted")]
    assert plan_state(restarted, plan_id) is PlanState.RUNNING
    assert owed(restarted, plan_id) == [
        f"the application is in maintenance mode (`/migrate run {plan_id} maintenance_off`)"
    ]
    (told,) = [line for line in thread(restarted) if "interrupted" in line]
    assert "will not run again by itself" in told and "Owed: the application is in maintenance mode" in told
    assert restarted.runner.recover() == []

    # PostgreSQL rolls the transaction back when it finds its client gone
    wait_for("the dead bot's session gone from the target", lambda: not target_sessions(pg_admin_dsn, dbname))
    assert not column_exists(nchat_dsn)
    assert ledger.applied(nchat_dsn, file_name=SLOW_MIGRATION) is None
    assert steps(restarted, plan_id)[-1] == ("apply", 1, "interrupted")  # and nothing ran again meanwhile


def test_status_names_the_interrupted_step_and_what_is_owed(
    tmp_path: Path, nchat_dsn: str, pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    bot, plan_id, _ = killed_during_apply(tmp_path, nchat_dsn, pg_admin_dsn, monkeypatch, children)
    assert bot.services().runner.recover() == [plan_id]
    status = bot.cli("status", str(plan_id))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert any("Apply the migration" in line and "interrupted" in line for line in lines), status.stdout
    assert "maintenance mode" in status.stdout, status.stdout


def test_the_target_session_of_a_killed_bot_ends_with_it(
    tmp_path: Path, nchat_dsn: str, pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    _, _, session = killed_during_apply(tmp_path, nchat_dsn, pg_admin_dsn, monkeypatch, children)
    dbname = str(conninfo_to_dict(nchat_dsn)["dbname"])
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while time.monotonic() < deadline and session in [
        pid for pid, _, _ in target_sessions(pg_admin_dsn, dbname)
    ]:
        time.sleep(0.1)
    held = exclusive_holders(pg_admin_dsn, dbname, "nchat.nchat_channels")
    assert held == [], (
        f"{ORPHAN_GRACE_SECONDS} s after the kill, the dead bot's session still locks the table"
    )
