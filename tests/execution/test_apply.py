"""Applying segments to a real PostgreSQL: commits, failures, lock waits and retries, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from bot.execution.apply import Blocker
from tests.execution.conftest import apply, segment, with_password


def query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def table_dsn(target_dsn: str) -> str:
    with psycopg.connect(target_dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (1, 'one')")
    return target_dsn


def test_segments_commit_in_order_with_each_statement_timed(table_dsn: str) -> None:
    heard: list[str] = []
    result = apply(
        table_dsn,
        [
            segment(True, (0, "ALTER TABLE t ADD COLUMN flag boolean"), (1, "UPDATE t SET flag = true")),
            segment(False, (2, "CREATE INDEX CONCURRENTLY t_flag ON t (flag)")),
            segment(True, (4, "INSERT INTO t VALUES (2, '100% as written; -- not a comment')")),
        ],
        progress=heard.append,
    )
    assert result.ok and result.committed == (0, 1, 2, 4)
    assert [index for index, _ in result.timings] == [0, 1, 2, 4]
    assert all(seconds >= 0 for _, seconds in result.timings) and result.duration_seconds > 0
    assert query(table_dsn, "SELECT note FROM t WHERE id = 2") == [("100% as written; -- not a comment",)]
    assert query(table_dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_flag'::regclass") == [
        (True,)
    ]
    assert heard[1].startswith("segment 2/3 committed (1 statement(s), outside a transaction) in ")


def test_a_failing_segment_is_rolled_back_and_the_segments_before_it_stay_committed(table_dsn: str) -> None:
    dsn, password = with_password(table_dsn)
    result = apply(
        dsn,
        [
            segment(True, (0, "CREATE TABLE a (id int)"), (1, "INSERT INTO a VALUES (1)")),
            segment(True, (2, "ALTER TABLE t ADD COLUMN c int"), (3, f'SELECT 1 / 0 AS "{password}"')),
            segment(True, (4, "CREATE TABLE never (id int)")),
        ],
    )
    assert result.committed == (0, 1)
    failure = result.failure
    assert failure is not None and (failure.segment, failure.statement, failure.sqlstate) == (1, 3, "22012")
    assert "division by zero" in failure.message and failure.transactional
    assert query(dsn, "SELECT count(*) FROM a") == [(1,)]
    columns = query(dsn, "SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0")
    assert [name for (name,) in columns] == ["id", "note"]
    assert query(dsn, "SELECT to_regclass('never')") == [(None,)]


def test_a_failure_message_shows_no_secret_of_the_statement(target_dsn: str) -> None:
    result = apply(target_dsn, [segment(True, (0, "ALTER ROLE nobody PASSWORD 'hunter22' VALID UNTIL soon"))])
    assert result.failure is not None and result.failure.sqlstate == "42601"
    assert "LINE 1" in result.failure.message and "hunter22" not in result.failure.message


def test_a_concurrent_index_build_runs_outside_a_transaction(table_dsn: str) -> None:
    statement = (0, "CREATE INDEX CONCURRENTLY t_note ON t (note)")
    failed = apply(table_dsn, [segment(True, statement)])
    assert failed.failure is not None and "cannot run inside a transaction block" in failed.failure.message
    assert apply(table_dsn, [segment(False, statement)]).ok


def test_the_statement_timeout_is_enforced(target_dsn: str) -> None:
    started = time.monotonic()
    result = apply(target_dsn, [segment(True, (0, "SELECT pg_sleep(10)"))], statement_timeout="300ms")
    assert result.failure is not None and result.failure.sqlstate == "57014"
    assert "statement timeout" in result.failure.message
    assert time.monotonic() - started < 5


@contextmanager
def lock_holder(dsn: str, release: threading.Event) -> Iterator[int]:
    """A session named "nightly-report" holds ACCESS EXCLUSIVE on ``t`` in an open transaction until
    ``release`` is set; yields its pid."""
    conn = psycopg.connect(dsn, application_name="nightly-report")
    conn.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")

    def hold() -> None:
        release.wait(30)
        conn.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        yield conn.info.backend_pid
    finally:
        release.set()
        holder.join()
        conn.close()


def test_who_blocks_a_statement_is_reported_and_the_apply_goes_on_once_released(table_dsn: str) -> None:
    release = threading.Event()
    reports: list[list[Blocker]] = []

    def on_lock_wait(blockers: list[Blocker]) -> None:
        reports.append(blockers)
        release.set()

    with lock_holder(table_dsn, release) as holder_pid:
        result = apply(
            table_dsn,
            [segment(True, (0, "ALTER TABLE t ADD COLUMN c int"))],
            lock_timeout="1s",
            lock_retries=3,
            on_lock_wait=on_lock_wait,
        )
    assert result.ok and result.committed == (0,)
    [[blocker]] = reports[:1]
    assert (blocker.pid, blocker.application_name) == (holder_pid, "nightly-report")
    assert blocker.state == "idle in transaction" and "LOCK TABLE t" in blocker.query
    assert blocker.lock_mode == "AccessExclusiveLock" and blocker.relation == "t"
    assert blocker.since is not None


def test_a_lock_timeout_rolls_the_segment_back_and_retries_it(table_dsn: str) -> None:
    release = threading.Event()
    heard: list[str] = []
    with lock_holder(table_dsn, release):
        threading.Timer(0.5, release.set).start()
        result = apply(
            table_dsn,
            [segment(True, (0, "INSERT INTO t VALUES (5, 'five')"), (1, "ALTER TABLE t ADD COLUMN c int"))],
            lock_timeout="100ms",
            lock_retries=6,
            retry_backoff_seconds=0.1,
            progress=heard.append,
        )
    assert result.ok and result.lock_retries_used >= 1
    assert "lock not granted within 100ms, rolled back; retry 1/6 in 0.1 s" in heard[0]
    assert query(table_dsn, "SELECT count(*) FROM t WHERE id = 5") == [(1,)]


def test_retries_run_out(table_dsn: str) -> None:
    release = threading.Event()
    with lock_holder(table_dsn, release):
        result = apply(
            table_dsn,
            [
                segment(True, (0, "CREATE TABLE b (id int)")),
                segment(True, (1, "ALTER TABLE t ADD COLUMN c int")),
            ],
            lock_timeout="100ms",
            lock_retries=2,
            retry_backoff_seconds=0.05,
        )
    assert result.committed == (0,) and result.lock_retries_used == 2
    assert result.failure is not None and (result.failure.statement, result.failure.sqlstate) == (1, "55P03")


def test_cancelling_stops_between_segments(target_dsn: str) -> None:
    done: list[str] = []
    result = apply(
        target_dsn,
        [segment(True, (0, "CREATE TABLE a (id int)")), segment(True, (1, "CREATE TABLE b (id int)"))],
        progress=done.append,
        cancelled=lambda: bool(done),
    )
    assert result.committed == (0,)
    assert result.failure is not None and result.failure.cancelled and result.failure.statement is None
    assert query(target_dsn, "SELECT to_regclass('b')") == [(None,)]


def test_after_last_segment_commits_with_the_last_segment_or_not_at_all(target_dsn: str) -> None:
    def record(conn: psycopg.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS record (txid xid8)")
        conn.execute("INSERT INTO record SELECT pg_current_xact_id()")

    failing = [segment(True, (0, "CREATE TABLE a (id int)")), segment(True, (1, "SELECT 1 / 0"))]
    assert apply(target_dsn, failing, after_last_segment=record).committed == (0,)
    assert query(target_dsn, "SELECT to_regclass('record')") == [(None,)]

    ok = [
        segment(
            True, (0, "CREATE TABLE b (id int)"), (1, "INSERT INTO b SELECT pg_current_xact_id()::text::int")
        )
    ]
    assert apply(target_dsn, ok, after_last_segment=record).ok
    assert query(target_dsn, "SELECT (SELECT txid::text FROM record) = (SELECT id::text FROM b)") == [(True,)]


def test_after_a_non_transactional_last_segment_the_hook_runs_alone(table_dsn: str) -> None:
    def fail(conn: psycopg.Connection) -> None:
        conn.execute("SELECT 1 / 0")

    result = apply(
        table_dsn,
        [segment(False, (0, "CREATE INDEX CONCURRENTLY t_note ON t (note)"))],
        after_last_segment=fail,
    )
    assert result.committed == (0,)
    assert result.failure is not None and result.failure.statement is None
    assert result.failure.message.startswith("after the last segment: division by zero")
    assert query(table_dsn, "SELECT to_regclass('t_note') IS NOT NULL") == [(True,)]
