"""Rollback rehearsals on a real PostgreSQL: up, down, up on a scratch copy, with the locks PostgreSQL really
takes, rewrites, timings, and the differences a rollback leaves named."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from bot.execution.checks import Outcome
from bot.execution.rehearsal import (
    APPLY,
    APPLY_AGAIN,
    COMPARE,
    INTEGRITY,
    PERFORMANCE_ASSESSED,
    ROLLBACK,
    ROLLBACK_TESTED,
    SYNTHETIC,
    RehearsalReport,
    rehearse,
)
from bot.execution.scratch import Scratch, scratch_database
from bot.execution.segments import from_data, plan_segments
from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import LiveCatalog, OfflineCatalog
from bot.sql.model import Analysis, LockLevel, Rollback
from bot.sql.parse import parse_statements
from bot.sql.rollback import file_rollback, generate_rollback
from tests.conftest import EXAMPLES

POLICY = load_policy().complexity
MIGRATIONS = EXAMPLES / "migrations"
ROLLBACK_054 = MIGRATIONS / "054_add_message_bookmarks.rollback.sql"
S, SRE, SUE, AE = (
    LockLevel.SHARE,
    LockLevel.SHARE_ROW_EXCLUSIVE,
    LockLevel.SHARE_UPDATE_EXCLUSIVE,
    LockLevel.ACCESS_EXCLUSIVE,
)


@dataclasses.dataclass
class Planned:
    """A migration and its rollback as a plan stores them."""

    analysis: Analysis
    rollback_analysis: Analysis | None
    segments: dict[str, list]


def planned(sql: str, rollback: Rollback) -> Planned:
    analysis = analyze(sql, catalog=OfflineCatalog(180000), policy=POLICY)
    rollback_analysis = (
        analyze(rollback.sql, catalog=OfflineCatalog(180000), policy=POLICY)
        if rollback.source == "file"
        else None
    )
    segments = plan_segments(analysis, rollback, rollback_analysis)
    assert segments["problem"] is None
    return Planned(analysis, rollback_analysis, segments)


def by_hand(sql: str, rollback_sql: str) -> Planned:
    return planned(sql, Rollback(source="file", sql=rollback_sql))


def run(scratch: Scratch, plan: Planned, **options: object) -> RehearsalReport:
    settings: dict[str, object] = {"lock_timeout": "5s", "statement_timeout": "1min", "scratch": scratch}
    return rehearse(
        scratch.dsn,
        from_data(plan.segments["forward"]),
        from_data(plan.segments["rollback"]),
        analysis=plan.analysis,
        rollback_analysis=plan.rollback_analysis,
        **{**settings, **options},  # type: ignore[arg-type]
    )


@pytest.fixture
def scratch(pg_admin_dsn: str, nchat_dsn: str) -> Iterator[Scratch]:
    """A template copy of the example chat schema with its rows."""
    with scratch_database(pg_admin_dsn, nchat_dsn, "template") as copy:
        yield copy


def outcomes(report: RehearsalReport) -> dict[str, str]:
    return {p.name: p.outcome.value for p in report.phases}


def test_example_054_and_its_rollback_file_pass_with_the_checklist_items_they_prove(scratch: Scratch) -> None:
    migration = MIGRATIONS / "054_add_message_bookmarks.sql"
    plan = planned(migration.read_text(), file_rollback(ROLLBACK_054.read_text(), ROLLBACK_054))
    report = run(scratch, plan)
    assert report.passed, report.to_dict()
    assert outcomes(report) == {name: "passed" for name in (APPLY, INTEGRITY, ROLLBACK, COMPARE, APPLY_AGAIN)}
    assert report.differences == ()
    assert [s.line for s in report.statements] == [8, 18, 21, 25]
    created = report.statements[0]
    assert {lock.relation: lock.observed for lock in created.locks} == {
        "nchat.nchat_message_bookmarks": AE,  # new: nobody else sees it before the COMMIT
        "nchat.nchat_messages": SRE,  # its foreign keys lock the tables they reference
        "nchat.nchat_users": SRE,
    }
    assert report.lock_mismatches == []
    assert set(report.proves) == {ROLLBACK_TESTED, PERFORMANCE_ASSESSED}
    assert "template" in report.proves[ROLLBACK_TESTED]
    # the new table's ACCESS EXCLUSIVE blocks nobody: the strongest lock that matters is on the messages
    assert "strongest lock SHARE ROW EXCLUSIVE on nchat.nchat_messages" in report.proves[PERFORMANCE_ASSESSED]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] and data["scratch"]["strategy"] == "template" and "dsn" not in data["scratch"]


def test_a_generated_rollback_of_an_add_column_passes_on_a_schema_only_dump_with_synthetic_rows(
    pg_admin_dsn: str, nchat_dsn: str
) -> None:
    sql = "ALTER TABLE nchat.nchat_users ADD COLUMN gift_note text;"
    with psycopg.connect(nchat_dsn) as conn:
        rollback = generate_rollback(parse_statements(sql), catalog=LiveCatalog(conn))
    plan = planned(sql, rollback)
    with scratch_database(pg_admin_dsn, nchat_dsn, "dump", schema_only=True) as copy:
        assert copy.strategy == "dump" and not copy.has_data
        report = run(copy, plan, rows=300)
        with psycopg.connect(copy.dsn) as conn:
            assert conn.execute("SELECT count(*) FROM nchat.nchat_users").fetchone() == (300,)
    assert report.passed, report.to_dict()
    assert report.phase(SYNTHETIC).details == ("nchat.nchat_users: 300 synthetic row(s) added",)
    assert report.data == "300 synthetic rows in the tables the migration touches"
    assert set(report.proves) == {ROLLBACK_TESTED, PERFORMANCE_ASSESSED}
    assert "300 synthetic rows" in report.proves[PERFORMANCE_ASSESSED]


@pytest.mark.parametrize(
    ("rollback_sql", "expected"),
    [
        ("DROP INDEX nchat.idx_gift;", ["column nchat.nchat_messages.gift_note still exists"]),
        ("ALTER TABLE nchat.nchat_messages DROP COLUMN gift_note;", ["index nchat.idx_gift still exists"]),
        (
            "DROP INDEX nchat.idx_gift; DROP INDEX nchat.idx_messages_user;"
            "ALTER TABLE nchat.nchat_messages DROP COLUMN gift_note;",
            ["index nchat.idx_messages_user is missing"],
        ),
    ],
    ids=["forgets the column", "forgets the index", "drops one too many"],
)
def test_a_rollback_that_leaves_the_schema_different_fails_naming_what(
    scratch: Scratch, rollback_sql: str, expected: list[str]
) -> None:
    plan = by_hand(
        "ALTER TABLE nchat.nchat_messages ADD COLUMN gift_note text;\n"
        "CREATE INDEX idx_gift ON nchat.nchat_messages (edited_at);",
        rollback_sql,
    )
    report = run(scratch, plan)
    assert not report.passed
    assert report.differences == tuple(expected)
    assert outcomes(report)[COMPARE] == "failed"
    assert report.phase(COMPARE).error == "the rollback left 1 difference(s)"
    assert ROLLBACK_TESTED not in report.proves


def test_a_migration_whose_rollback_does_not_undo_it_cannot_apply_twice(scratch: Scratch) -> None:
    plan = by_hand(
        "CREATE TABLE nchat.gift_cards (id bigint PRIMARY KEY, note text);",
        "COMMENT ON TABLE nchat.nchat_users IS 'Chat users';",
    )
    report = run(scratch, plan)
    assert outcomes(report) == {
        APPLY: "passed",
        INTEGRITY: "passed",
        ROLLBACK: "passed",
        COMPARE: "failed",
        APPLY_AGAIN: "failed",
    }
    assert report.differences == ("table nchat.gift_cards still exists",)  # not each of its parts
    again = report.phase(APPLY_AGAIN)
    assert again.error is not None and 'relation "gift_cards" already exists (SQLSTATE 42P07)' in again.error
    assert again.statements[-1].error == again.error


def test_a_failed_migration_is_neither_rolled_back_nor_compared(scratch: Scratch) -> None:
    report = run(scratch, by_hand("ALTER TABLE nchat.nchat_messages ADD COLUMN x nosuchtype;", "SELECT 1;"))
    assert outcomes(report) == {
        APPLY: "failed",
        INTEGRITY: "not_checked",
        ROLLBACK: "not_checked",
        COMPARE: "not_checked",
        APPLY_AGAIN: "not_checked",
    }
    assert 'type "nosuchtype" does not exist' in (report.phase(APPLY).error or "")
    assert report.proves == {}


@pytest.mark.parametrize(
    ("sql", "rollback_sql", "expected"),
    [
        (
            "CREATE INDEX idx_body ON nchat.nchat_messages (body);",
            "DROP INDEX nchat.idx_body;",
            {"nchat.nchat_messages": S},
        ),
        (
            "ALTER TABLE nchat.nchat_messages ADD COLUMN gift_note text;",
            "ALTER TABLE nchat.nchat_messages DROP COLUMN gift_note;",
            {"nchat.nchat_messages": AE},
        ),
        (
            "ALTER TABLE nchat.nchat_messages ADD CONSTRAINT fk_author "
            "FOREIGN KEY (user_id) REFERENCES nchat.nchat_users (id);",
            "ALTER TABLE nchat.nchat_messages DROP CONSTRAINT fk_author;",
            {"nchat.nchat_messages": SRE, "nchat.nchat_users": SRE},
        ),
        (
            "ALTER TABLE nchat.nchat_messages ADD CONSTRAINT fk_author "
            "FOREIGN KEY (user_id) REFERENCES nchat.nchat_users (id) NOT VALID;",
            "ALTER TABLE nchat.nchat_messages DROP CONSTRAINT fk_author;",
            {"nchat.nchat_messages": SRE, "nchat.nchat_users": SRE},
        ),
    ],
    ids=["create index", "add column", "add foreign key", "add foreign key not valid"],
)
def test_the_locks_taken_are_those_postgresql_documents(
    scratch: Scratch, sql: str, rollback_sql: str, expected: dict[str, LockLevel]
) -> None:
    report = run(scratch, by_hand(sql, rollback_sql))
    assert report.passed, report.to_dict()
    (statement,) = report.statements
    assert {lock.relation: lock.observed for lock in statement.locks} == expected
    assert {lock.relation: lock.analysed for lock in statement.locks} == expected
    assert report.lock_mismatches == []


def test_create_index_concurrently_is_watched_from_a_second_connection(scratch: Scratch) -> None:
    """The index build waits for an older snapshot, so the watch sees its lock for sure."""
    plan = by_hand(
        "CREATE INDEX CONCURRENTLY idx_body ON nchat.nchat_messages (body);",
        "DROP INDEX CONCURRENTLY nchat.idx_body;",
    )
    with psycopg.connect(scratch.dsn) as old:
        old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT 1")  # a snapshot the build must wait for
        waiter = threading.Thread(target=release_when_waited_for, args=(scratch.dsn, old))
        waiter.start()
        report = run(scratch, plan)
        waiter.join()
    assert report.passed, report.to_dict()
    (statement,) = report.statements
    assert not statement.transactional
    assert [(lock.relation, lock.observed, lock.mismatch) for lock in statement.locks] == [
        ("nchat.nchat_messages", SUE, False)
    ]


def release_when_waited_for(dsn: str, old: psycopg.Connection) -> None:
    """End ``old``'s transaction once a CREATE INDEX CONCURRENTLY has waited for it a little."""
    with psycopg.connect(dsn, autocommit=True) as watch:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'CREATE INDEX CONCURRENTLY%'"
            ).fetchone()
            if waiting and waiting[0]:
                time.sleep(0.1)
                break
            time.sleep(0.02)
    old.rollback()


@pytest.mark.parametrize(
    ("wrong", "said"),
    [({"lock": LockLevel.ROW_EXCLUSIVE}, "ROW EXCLUSIVE"), ({"table": None}, "no lock")],
    ids=["a weaker lock", "no table"],
)
def test_an_analysis_that_understates_a_lock_is_called_out(
    scratch: Scratch, wrong: dict[str, object], said: str
) -> None:
    plan = by_hand("CREATE INDEX idx_body ON nchat.nchat_messages (body);", "DROP INDEX nchat.idx_body;")
    operations = [dataclasses.replace(op, **wrong) for op in plan.analysis.operations]  # type: ignore[arg-type]
    plan.analysis = dataclasses.replace(plan.analysis, operations=operations)
    report = run(scratch, plan)
    assert report.passed  # the analysis is wrong, not the migration
    assert report.lock_mismatches == [
        f"L1: nchat.nchat_messages: the analysis says {said}, PostgreSQL took SHARE: "
        "CREATE INDEX idx_body ON nchat.nchat_messages (body)"
    ]


def test_a_lock_held_already_in_the_transaction_is_no_mismatch(scratch: Scratch) -> None:
    plan = by_hand(
        "BEGIN;\nALTER TABLE nchat.nchat_messages ADD COLUMN a int;\n"
        "ALTER TABLE nchat.nchat_messages ADD COLUMN b int;\nCOMMIT;",
        "ALTER TABLE nchat.nchat_messages DROP COLUMN a, DROP COLUMN b;",
    )
    report = run(scratch, plan)
    assert report.passed, report.to_dict()
    first, second = report.statements
    assert [(lock.observed, lock.mismatch) for lock in first.locks] == [(AE, False)]
    assert [(lock.observed, lock.mismatch, lock.note) for lock in second.locks] == [
        (None, False, "ACCESS EXCLUSIVE held already, from an earlier statement of the transaction")
    ]


def test_a_table_rewrite_is_detected(pg_admin_dsn: str, nchat_dsn: str) -> None:
    with psycopg.connect(nchat_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nchat.counters (id int PRIMARY KEY, hits int NOT NULL)")
    plan = by_hand(
        "ALTER TABLE nchat.counters ALTER COLUMN hits TYPE bigint;\n"
        "ALTER TABLE nchat.counters ADD COLUMN note text;",
        "ALTER TABLE nchat.counters DROP COLUMN note;\n"
        "ALTER TABLE nchat.counters ALTER COLUMN hits TYPE int;",
    )
    with scratch_database(pg_admin_dsn, nchat_dsn, "template") as copy:
        report = run(copy, plan, rows=1000)
    assert report.passed, report.to_dict()
    assert report.phase(SYNTHETIC).details == ("nchat.counters: 1,000 synthetic row(s) added",)
    assert [s.rewritten for s in report.statements] == [("nchat.counters",), ()]
    assert report.rewritten_tables == ["nchat.counters"]
    assert "rewrote nchat.counters" in report.proves[PERFORMANCE_ASSESSED]


def test_statements_and_migrations_past_the_time_limit_fail_it(scratch: Scratch) -> None:
    plan = by_hand("SELECT pg_sleep(0.3);", "SELECT 1;")
    assert run(scratch, plan, max_duration_seconds=30).passed
    report = run(scratch, plan, max_duration_seconds=0.2)
    assert all(p.outcome is Outcome.PASSED for p in report.phases)
    assert not report.passed
    assert [line.split(",")[0] for line in report.over_limit] == [
        "L1 took 0.3 s",
        "the migration took 0.3 s",
    ]


def test_an_integrity_failure_fails_the_rehearsal_and_the_rollback_is_still_tried(scratch: Scratch) -> None:
    plan = by_hand(
        "CREATE TABLE nchat.tips (id int PRIMARY KEY, message_id uuid REFERENCES nchat.nchat_messages);\n"
        "ALTER TABLE nchat.tips DISABLE TRIGGER ALL;\n"
        "INSERT INTO nchat.tips VALUES (1, gen_random_uuid());\n"
        "ALTER TABLE nchat.tips ENABLE TRIGGER ALL;",
        "DROP TABLE nchat.tips;",
    )
    report = run(scratch, plan)
    assert outcomes(report) == {
        APPLY: "passed",
        INTEGRITY: "failed",
        ROLLBACK: "passed",
        COMPARE: "passed",
        APPLY_AGAIN: "passed",
    }
    assert any(
        "1 row(s) of nchat.tips reference no row of nchat.nchat_messages" in d
        for d in report.phase(INTEGRITY).details
    )
    assert not report.passed and ROLLBACK_TESTED in report.proves


def test_the_report_keeps_passwords_out(scratch: Scratch) -> None:
    secret = "s3cret-pw-not-shown"
    report = run(scratch, by_hand(f"SELECT 'postgresql://app:{secret}@db/x'::int;", "SELECT 1;"))
    assert report.phase(APPLY).outcome is Outcome.FAILED
    assert "invalid input syntax for type integer" in (report.phase(APPLY).error or "")
    assert secret not in json.dumps(report.to_dict())
    assert scratch.dsn not in repr(scratch)
