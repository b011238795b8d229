"""Backups with the real pg_dump and pg_restore: taken, checked, restored, and never half there."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import psycopg
import pytest

from bot.embedded import dsn_for_database
from bot.execution.backup import backup, restore, restore_check, verify_backup
from bot.execution.errors import StepFailed, StepTimeout
from tests.conftest import EXAMPLES
from tests.execution.conftest import table_locked, with_password

TABLES = ["nchat.nchat_users", "nchat.nchat_messages"]


def contents(dsn: str, table: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def spy(tool: str, directory: Path) -> str:
    """``tool`` behind a script that writes down its arguments and PGPASSWORD, then runs the real one."""
    script = directory / f"spy-{Path(tool).name}"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {directory}/argv\n'
        f'printf "%s" "$PGPASSWORD" > {directory}/pgpassword\nexec {tool} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_backup_keeps_the_password_off_the_command_line(
    nchat_dsn: str, pg_dump: str, tmp_path: Path
) -> None:
    dsn, password = with_password(nchat_dsn)
    taken = backup(
        dsn, tmp_path / "backups", "plan-7-20260101T000000Z", pg_dump=spy(pg_dump, tmp_path), timeout=60
    )
    assert taken.path == tmp_path / "backups" / "plan-7-20260101T000000Z.dump"
    assert taken.format == "custom" and taken.size_bytes == taken.path.stat().st_size > 100_000
    argv = (tmp_path / "argv").read_text()
    assert password not in argv and "--dbname=" in argv
    assert (tmp_path / "pgpassword").read_text() == password


def test_a_backup_is_checked_for_the_tables_the_migration_touches(
    nchat_dsn: str, pg_dump: str, pg_restore: str, tmp_path: Path
) -> None:
    taken = backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, timeout=60)
    check = verify_backup(taken.path, pg_restore=pg_restore, objects=TABLES)
    assert check.found == tuple(TABLES) and check.entries > 20
    with pytest.raises(
        StepFailed, match=r"lacks nchat\.nchat_bookmarks \(definition\), nchat\.nchat_bookmarks \(data\)"
    ):
        verify_backup(taken.path, pg_restore=pg_restore, objects=[*TABLES, "nchat.nchat_bookmarks"])


def test_a_file_that_is_not_a_backup_fails_its_check(pg_restore: str, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.dump"
    bogus.write_text("not an archive")
    with pytest.raises(StepFailed, match="pg_restore exited"):
        verify_backup(bogus, pg_restore=pg_restore, objects=TABLES)


def test_a_backup_is_never_overwritten(nchat_dsn: str, pg_dump: str, tmp_path: Path) -> None:
    (tmp_path / "b.dump").write_text("an earlier backup")
    with pytest.raises(StepFailed, match="exists already"):
        backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, timeout=60)
    assert (tmp_path / "b.dump").read_text() == "an earlier backup"


def test_a_failed_backup_names_no_password(target_dsn: str, pg_dump: str, tmp_path: Path) -> None:
    dsn, password = with_password(dsn_for_database(target_dsn, "no_such_database"))
    with pytest.raises(StepFailed, match="no_such_database") as failed:
        backup(dsn, tmp_path, "b", pg_dump=pg_dump, timeout=60)
    assert password not in failed.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_backup_that_times_out_leaves_no_partial_file(nchat_dsn: str, pg_dump: str, tmp_path: Path) -> None:
    seen: list[bool] = []

    def watch_file() -> None:  # the dump exists while pg_dump waits for its lock: the removal is tested
        while not seen:
            if (tmp_path / "b.dump").exists():
                seen.append(True)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_file, daemon=True)
    with table_locked(nchat_dsn, "nchat.nchat_messages"):
        watcher.start()
        with pytest.raises(StepTimeout):
            backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, timeout=1.5)
        seen.append(False)
    assert seen[0] is True
    assert list(tmp_path.iterdir()) == []


def test_data_changed_after_a_parallel_backup_comes_back_row_by_row(
    nchat_dsn: str, pg_dump: str, pg_restore: str, tmp_path: Path
) -> None:
    before = {table: contents(nchat_dsn, table) for table in TABLES}
    taken = backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, jobs=2, timeout=60)
    assert taken.format == "directory" and taken.path.is_dir() and taken.size_bytes > 100_000
    verify_backup(taken.path, pg_restore=pg_restore, objects=TABLES)
    with psycopg.connect(nchat_dsn) as conn:
        conn.execute("UPDATE nchat.nchat_users SET email = 'lost@example.com' WHERE username LIKE 'user1%'")
        conn.execute("DELETE FROM nchat.nchat_messages WHERE created_at > '2026-01-10'")
        conn.execute("ALTER TABLE nchat.nchat_users DROP COLUMN legacy_field")
    assert contents(nchat_dsn, "nchat.nchat_users") != before["nchat.nchat_users"]
    dsn, password = with_password(nchat_dsn)
    restored = restore(taken.path, dsn, pg_restore=pg_restore, jobs=2, timeout=60)
    assert password not in restored.output
    assert {table: contents(nchat_dsn, table) for table in TABLES} == before


def test_a_dropped_table_comes_back(nchat_dsn: str, pg_dump: str, pg_restore: str, tmp_path: Path) -> None:
    before = contents(nchat_dsn, "nchat.nchat_audit_log")
    taken = backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, timeout=60)
    with psycopg.connect(nchat_dsn) as conn:
        conn.execute("DROP TABLE nchat.nchat_audit_log")
    restore(taken.path, nchat_dsn, pg_restore=pg_restore, timeout=60)
    assert contents(nchat_dsn, "nchat.nchat_audit_log") == before


def scratch_databases(admin_dsn: str) -> list[str]:
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'migrate_bot_restore_check_%'"
        )
        return [name for (name,) in rows]


def test_a_restore_check_compares_row_counts_in_a_scratch_database_it_drops(
    nchat_dsn: str, pg_admin_dsn: str, pg_dump: str, pg_restore: str, tmp_path: Path
) -> None:
    taken = backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, timeout=60)
    counts = restore_check(
        taken.path, nchat_dsn, pg_admin_dsn, pg_restore=pg_restore, tables=TABLES, timeout=60
    )
    assert counts == {"nchat.nchat_users": (2000, 2000), "nchat.nchat_messages": (20000, 20000)}
    assert scratch_databases(pg_admin_dsn) == []
    with psycopg.connect(nchat_dsn) as conn:
        conn.execute("DELETE FROM nchat.nchat_messages WHERE created_at > '2026-01-10'")
    with pytest.raises(StepFailed, match=r"nchat\.nchat_messages: \d+ in the target, 20000 restored"):
        restore_check(taken.path, nchat_dsn, pg_admin_dsn, pg_restore=pg_restore, tables=TABLES, timeout=60)
    assert scratch_databases(pg_admin_dsn) == []
    os.remove(taken.path)
    with pytest.raises(StepFailed, match="pg_restore exited"):
        restore_check(taken.path, nchat_dsn, pg_admin_dsn, pg_restore=pg_restore, tables=TABLES, timeout=60)
    assert scratch_databases(pg_admin_dsn) == []


def test_a_restore_that_cannot_drop_what_depends_on_new_objects_changes_nothing(
    nchat_dsn: str, pg_dump: str, pg_restore: str, tmp_path: Path
) -> None:
    taken = backup(nchat_dsn, tmp_path, "b", pg_dump=pg_dump, timeout=60)
    with psycopg.connect(nchat_dsn, autocommit=True) as conn:
        conn.execute("UPDATE nchat.nchat_audit_log SET action = 'after the backup'")
        conn.execute((EXAMPLES / "migrations" / "054_add_message_bookmarks.sql").read_text())
    after = contents(nchat_dsn, "nchat.nchat_audit_log")  # a table nothing new depends on
    with pytest.raises(StepFailed, match="cannot drop constraint nchat_users_pkey"):
        restore(taken.path, nchat_dsn, pg_restore=pg_restore, timeout=60)
    assert contents(nchat_dsn, "nchat.nchat_audit_log") == after
