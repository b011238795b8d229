"""The guide's database signals on the real test database: sessions, a lock wait, a long query and a
deadlock made here; a silent target makes every signal unknown by the deadline."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bot.monitor.signals import (
    CONNECTIONS,
    DEADLOCKS,
    LOCK_TIMEOUTS,
    LOCK_WAITS,
    LONG_RUNNING,
    OLDEST_QUERY,
    SIGNALS,
    DatabaseSignals,
)
from bot.monitor.sources import Sample

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def wait_for(signals: DatabaseSignals, check: Callable[[dict[str, Sample]], bool]) -> dict[str, Sample]:
    """Read until ``check`` passes (statistics and waits show within a moment, not at once)."""
    deadline = time.monotonic() + 10
    while True:
        found = signals.read(NOW)
        if check(found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


@contextmanager
def in_background(dsn: str, statement: str) -> Iterator[int]:
    """``statement`` running in another session; its pid. The statement's own error (it is cancelled
    afterwards, or fails as a deadlock victim) is expected."""
    conn = psycopg.connect(dsn, autocommit=True)
    pid = conn.info.backend_pid

    def run() -> None:
        with suppress(psycopg.Error):
            conn.execute(statement)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield pid
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", [pid])
        thread.join(10)
        conn.close()


def test_every_signal_is_read_and_lock_timeouts_are_unknown(target_dsn: str) -> None:
    found = DatabaseSignals(target_dsn).read(NOW)
    assert set(found) == set(SIGNALS)
    assert all(found[name].known and found[name].taken_at == NOW for name in SIGNALS if name != LOCK_TIMEOUTS)
    assert found[LONG_RUNNING].value == 0 and found[LOCK_WAITS].value == 0
    assert found[LOCK_TIMEOUTS].value is None
    assert "counts no lock timeouts" in found[LOCK_TIMEOUTS].detail


def test_connections_count_the_sessions_but_the_reader(target_dsn: str) -> None:
    signals = DatabaseSignals(target_dsn)
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(psycopg.connect(target_dsn))
        found = signals.read(NOW)[CONNECTIONS]
    assert found.value is not None and found.value >= 3
    assert "(3 on this database)" in found.detail and "max_connections" in found.detail


def test_a_lock_wait_is_seen_with_its_blocker(target_dsn: str) -> None:
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int)")
    with psycopg.connect(target_dsn) as holder:
        holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        with in_background(target_dsn, "SELECT count(*) FROM accounts") as waiter:
            found = wait_for(DatabaseSignals(target_dsn), lambda s: s[LOCK_WAITS].value == 1)
        assert f"{waiter} waits for {holder.info.backend_pid}" in found[LOCK_WAITS].detail


def test_a_long_query_is_counted_past_the_threshold(target_dsn: str) -> None:
    signals = DatabaseSignals(target_dsn, long_query_seconds=0.5)
    with in_background(target_dsn, "SELECT pg_sleep(30)") as pid:
        found = wait_for(signals, lambda s: s[LONG_RUNNING].value == 1)
    assert found[OLDEST_QUERY].value is not None and found[OLDEST_QUERY].value > 0.5
    assert f"pid {pid} active" in found[LONG_RUNNING].detail and "over 0.5 s" in found[LONG_RUNNING].detail


def test_the_deadlock_counter_rises_after_a_deadlock(target_dsn: str) -> None:
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE pair (id int PRIMARY KEY); INSERT INTO pair VALUES (1), (2)")
    signals = DatabaseSignals(target_dsn)
    before = signals.read(NOW)[DEADLOCKS].value
    assert before is not None
    with psycopg.connect(target_dsn) as first, psycopg.connect(target_dsn) as second:
        first.execute("UPDATE pair SET id = id WHERE id = 1")
        second.execute("UPDATE pair SET id = id WHERE id = 2")
        crossed = threading.Thread(target=_quietly, args=(first, "UPDATE pair SET id = id WHERE id = 2"))
        crossed.start()
        wait_for(signals, lambda s: s[LOCK_WAITS].value == 1)  # the first waits for the second's row
        _quietly(second, "UPDATE pair SET id = id WHERE id = 1")  # and the second for the first's
        crossed.join(10)
    found = wait_for(signals, lambda s: s[DEADLOCKS].value == before + 1)
    assert "cumulative" in found[DEADLOCKS].detail


def _quietly(conn: psycopg.Connection, statement: str) -> None:
    try:
        conn.execute(statement)
    except psycopg.errors.DeadlockDetected:
        conn.rollback()


@pytest.fixture
def unprivileged_dsn(target_dsn: str, pg_admin_dsn: str) -> Iterator[str]:
    """The test database as a role without pg_read_all_stats."""
    role = f"watcher_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    params = {k: str(v) for k, v in conninfo_to_dict(target_dsn).items() if v is not None}
    yield make_conninfo(**{**params, "user": role})
    with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_sessions_hidden_from_the_role_make_the_session_signals_unknown(
    target_dsn: str, unprivileged_dsn: str
) -> None:
    with psycopg.connect(target_dsn):
        found = DatabaseSignals(unprivileged_dsn).read(NOW)
    assert found[LOCK_WAITS].known and found[DEADLOCKS].known
    for name in (CONNECTIONS, LONG_RUNNING, OLDEST_QUERY):
        assert found[name].value is None and "grant it pg_read_all_stats" in found[name].detail


def test_a_silent_target_makes_every_signal_unknown_by_the_deadline(hanging_target: int) -> None:
    signals = DatabaseSignals(f"postgresql://u@127.0.0.1:{hanging_target}/db", timeout_seconds=1)
    started = time.monotonic()
    found = signals.read(NOW)
    assert time.monotonic() - started < 2
    assert all(not s.known for s in found.values())
    assert "no answer within 1 s" in found[CONNECTIONS].detail
    unset = DatabaseSignals(None, dsn_env="PROD_DB").read(NOW)
    assert unset[CONNECTIONS].detail == unset[DEADLOCKS].detail == "no target DSN: PROD_DB is not set"
