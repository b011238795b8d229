"""The ledger on the target: what was applied, by which plan, and whether it was rolled back."""

from __future__ import annotations

import psycopg
import pytest

from bot.execution import ledger
from bot.execution.errors import StepFailed
from tests.execution.conftest import apply, segment

SHA = "f81d42eafd64e711911f20f671e33870c5b7d7a9cb09bbbac891e01779c682a6"
FILE = "066_index_without_concurrently.sql"
RECORD = {"file_name": FILE, "sha256": SHA, "plan_id": 7, "environment": "production", "operator": "UALICE"}


def ledger_exists(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT to_regclass('migrate_bot.applied') IS NOT NULL").fetchone()[0]


def test_reading_an_absent_ledger_finds_nothing_and_creates_nothing(target_dsn: str) -> None:
    assert ledger.applied(target_dsn, sha256=SHA) is None
    ledger.check_not_applied(target_dsn, SHA)
    assert ledger.record_rolled_back(target_dsn, SHA) is None
    assert not ledger_exists(target_dsn)


def test_an_applied_migration_is_refused_until_it_is_rolled_back(target_dsn: str) -> None:
    ledger.ensure(target_dsn)
    ledger.ensure(target_dsn)  # once is enough, twice does no harm
    entry = ledger.record_applied(target_dsn, **RECORD)
    assert (entry.file_name, entry.plan_id, entry.operator, entry.rolled_back_at) == (FILE, 7, "UALICE", None)
    assert ledger.applied(target_dsn, sha256=SHA) == entry == ledger.applied(target_dsn, file_name=FILE)
    with pytest.raises(StepFailed, match=rf"{FILE} is already applied on \d{{4}}-\d\d-\d\d .* by plan #7"):
        ledger.check_not_applied(target_dsn, SHA)

    undone = ledger.record_rolled_back(target_dsn, SHA)
    assert undone is not None and undone.id == entry.id and undone.rolled_back_at is not None
    assert ledger.applied(target_dsn, sha256=SHA) is None
    ledger.check_not_applied(target_dsn, SHA)
    again = ledger.record_applied(target_dsn, **{**RECORD, "plan_id": 8})
    assert ledger.applied(target_dsn, sha256=SHA) == again


def test_the_same_file_cannot_be_recorded_live_twice(target_dsn: str) -> None:
    ledger.record_applied(target_dsn, **RECORD)
    with pytest.raises(StepFailed, match="applied_live_sha256"):
        ledger.record_applied(target_dsn, **{**RECORD, "plan_id": 9})


def test_the_ledger_row_commits_with_the_migrations_last_segment(target_dsn: str) -> None:
    def record(conn: psycopg.Connection) -> None:
        ledger.record_applied(conn, **RECORD)

    failing = [segment(True, (0, "CREATE TABLE a (id int)")), segment(True, (1, "SELECT 1 / 0"))]
    assert not apply(target_dsn, failing, after_last_segment=record).ok
    assert ledger.applied(target_dsn, sha256=SHA) is None and not ledger_exists(target_dsn)

    assert apply(target_dsn, [segment(True, (0, "CREATE TABLE b (id int)"))], after_last_segment=record).ok
    entry = ledger.applied(target_dsn, sha256=SHA)
    assert entry is not None and entry.plan_id == 7


def test_a_second_run_of_the_same_file_rolls_its_last_segment_back(target_dsn: str) -> None:
    ledger.record_applied(target_dsn, **RECORD)
    result = apply(
        target_dsn,
        [segment(True, (0, "CREATE TABLE b (id int)"))],
        after_last_segment=lambda conn: ledger.record_applied(conn, **RECORD),
    )
    assert result.failure is not None and result.failure.statement is None
    assert result.failure.sqlstate == "23505" and result.committed == ()
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute("SELECT to_regclass('b')").fetchone()[0] is None
