"""The target's own record of the migrations the bot applied: schema ``migrate_bot``, table ``applied``.

It lives on the target so that it is restored, dropped and copied with the data it describes, and so
that its row can commit in the same transaction as the migration's last segment (``record_applied`` on
the connection ``apply_segments`` hands to ``after_last_segment``): a migration is applied exactly when
the ledger says so. A unique index refuses a second live row for the same checksum, so two runs racing
to apply the same file cannot both commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from bot.execution.errors import StepFailed
from bot.execution.target import connected, scalar

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS migrate_bot;
CREATE TABLE IF NOT EXISTS migrate_bot.applied (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file_name text NOT NULL,
  sha256 text NOT NULL,
  plan_id bigint NOT NULL,
  environment text NOT NULL,
  operator text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  rolled_back_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS applied_live_sha256 ON migrate_bot.applied (sha256)
  WHERE rolled_back_at IS NULL;
COMMENT ON TABLE migrate_bot.applied IS 'Migrations applied by migrate-bot; rolled_back_at set when undone';
"""
COLUMNS = "id, file_name, sha256, plan_id, environment, operator, applied_at, rolled_back_at"


@dataclass(frozen=True)
class Entry:
    id: int
    file_name: str
    sha256: str
    plan_id: int
    environment: str
    operator: str
    applied_at: datetime
    rolled_back_at: datetime | None


@contextmanager
def _on(target: str | psycopg.Connection) -> Iterator[psycopg.Connection]:
    """``target``'s connection as it is (the caller commits), or one of our own for a DSN, committed here."""
    if isinstance(target, psycopg.Connection):
        yield target
        return
    with connected(target, autocommit=False) as conn:
        yield conn


def ensure(target: str | psycopg.Connection) -> None:
    """Create the ledger unless it exists (checked first: CREATE … IF NOT EXISTS needs the privilege)."""
    with _on(target) as conn:
        if not _exists(conn):
            conn.execute(SCHEMA)


def record_applied(
    target: str | psycopg.Connection,
    *,
    file_name: str,
    sha256: str,
    plan_id: int,
    environment: str,
    operator: str,
) -> Entry:
    """Record the migration as applied; on a connection, in its open transaction."""
    with _on(target) as conn:
        ensure(conn)
        cur = conn.cursor(row_factory=class_row(Entry))
        entry = cur.execute(
            f"INSERT INTO migrate_bot.applied (file_name, sha256, plan_id, environment, operator) "
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {COLUMNS}",
            (file_name, sha256, plan_id, environment, operator),
        ).fetchone()
        assert entry is not None  # RETURNING gives the row inserted
        return entry


def record_rolled_back(target: str | psycopg.Connection, sha256: str) -> Entry | None:
    """Mark the live entry of ``sha256`` rolled back; None when there was none (it never committed)."""
    with _on(target) as conn:
        if not _exists(conn):
            return None
        cur = conn.cursor(row_factory=class_row(Entry))
        return cur.execute(
            f"UPDATE migrate_bot.applied SET rolled_back_at = now() "
            f"WHERE sha256 = %s AND rolled_back_at IS NULL RETURNING {COLUMNS}",
            (sha256,),
        ).fetchone()


def applied(dsn: str, *, sha256: str | None = None, file_name: str | None = None) -> Entry | None:
    """The live (not rolled back) entry of a checksum or a file name, the latest first; None when there is
    none, or no ledger yet (nothing is created by reading)."""
    if (sha256 is None) == (file_name is None):
        raise ValueError("give exactly one of sha256 and file_name")
    with connected(dsn) as conn:
        if not _exists(conn):
            return None
        cur = conn.cursor(row_factory=class_row(Entry))
        column = "sha256" if sha256 is not None else "file_name"
        return cur.execute(
            f"SELECT {COLUMNS} FROM migrate_bot.applied WHERE {column} = %s AND rolled_back_at IS NULL "
            "ORDER BY applied_at DESC, id DESC LIMIT 1",
            (sha256 if sha256 is not None else file_name,),
        ).fetchone()


def check_not_applied(dsn: str, sha256: str) -> None:
    """Raise StepFailed when this exact file is applied on the target and not rolled back."""
    entry = applied(dsn, sha256=sha256)
    if entry:
        raise StepFailed(
            f"{entry.file_name} is already applied on {entry.applied_at:%Y-%m-%d %H:%M %Z} by plan "
            f"#{entry.plan_id} ({entry.environment}, {entry.operator})"
        )


def _exists(conn: psycopg.Connection) -> bool:
    return bool(scalar(conn, "SELECT to_regclass('migrate_bot.applied') IS NOT NULL"))
