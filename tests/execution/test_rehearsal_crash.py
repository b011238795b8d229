"""A bot killed (SIGKILL) in the middle of a rehearsal: while it lives a restart leaves its rehearsal alone;
once it is dead the rehearsal is interrupted, never run again by itself, and the scratch database it made
is dropped. From outside: the CLI rehearses in a subprocess on a real PostgreSQL and is killed there."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from bot.app import Services
from bot.demo import load_example_schema
from storage.models import OutboxRecord, RehearsalRecord
from tests.conftest import EXAMPLES
from tests.execution.crash import Bot, kill, wait_for
from tests.execution.test_runner import ROLES

SLOW = "090_slow_rehearsal.sql"


@pytest.fixture
def started() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def rehearsal(services: Services) -> RehearsalRecord | None:
    with services.db.session() as session:
        return session.scalars(select(RehearsalRecord)).first()


def scratch_exists(dsn: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_a_rehearsal_the_bot_died_in_is_interrupted_and_its_scratch_dropped(
    tmp_path: Path, target_dsn: str, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_example_schema(target_dsn, EXAMPLES)
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / SLOW).write_text(
        "ALTER TABLE nchat.nchat_channels ADD COLUMN probe int;\nSELECT pg_sleep(60);\n"
    )
    (migrations / SLOW.replace(".sql", ".rollback.sql")).write_text(
        "ALTER TABLE nchat.nchat_channels DROP COLUMN probe;\n"
    )
    env = {"dsn_env": "TARGET_DSN", "migrations_dir": str(migrations), "channel": "C0PROD"}
    bot = Bot.write(tmp_path, target_dsn, {"environments": {"production": env}, "roles": ROLES})
    proc = bot.start("rehearse", SLOW, "--operator", "dana")
    started.append(proc.pid)
    monkeypatch.setenv("TARGET_DSN", target_dsn)  # the restarted bot's environment
    services = bot.services()

    def applying() -> bool:
        """Its scratch database is stored, and the migration sleeps in it."""
        record = rehearsal(services)
        if not (record and record.scratch_name):
            return False
        with psycopg.connect(target_dsn) as conn:
            sleeping = "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND query LIKE 'SELECT pg_sleep%%'"
            return conn.execute(sleeping, (record.scratch_name,)).fetchone() is not None

    wait_for("applying on its scratch copy", applying, proc)
    record = rehearsal(services)
    assert record is not None and record.scratch_name is not None
    name = record.scratch_name
    assert scratch_exists(target_dsn, name)

    assert services.rehearsals.recover() == []  # its process lives: left alone
    assert rehearsal(services).state == "running"  # type: ignore[union-attr]

    kill(proc)
    assert services.rehearsals.recover() == [record.id]
    after = rehearsal(services)
    assert after is not None and after.state == "interrupted" and after.scratch_name is None
    assert not scratch_exists(target_dsn, name)
    with psycopg.connect(target_dsn) as conn:  # the target itself never had the column
        probe = "SELECT 1 FROM information_schema.columns WHERE column_name = 'probe'"
        assert conn.execute(probe).fetchone() is None
    with services.db.session() as session:
        texts = [r.payload.get("text", "") for r in session.scalars(select(OutboxRecord))]
    assert any("interrupted by a restart" in t for t in texts)
    assert services.rehearsals.recover() == []  # once
