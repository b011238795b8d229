"""The lock each operation is said to take is the lock PostgreSQL really holds (read from pg_locks)."""

from __future__ import annotations

import psycopg
import pytest

from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import OfflineCatalog
from bot.sql.model import LockLevel

SCHEMA = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE t (id int PRIMARY KEY, a int, b text DEFAULT 'x', p int, c int NOT NULL DEFAULT 0);
CREATE INDEX t_a ON t (a);
ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0) NOT VALID;
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
"""
# Statements that lock the existing table ``t``; CONCURRENTLY and VACUUM cannot run in a transaction.
STATEMENTS = [
    "CREATE INDEX t_b ON t (b)",
    "ALTER TABLE t ADD COLUMN d int",
    "ALTER TABLE t DROP COLUMN b",
    "ALTER TABLE t ALTER COLUMN a TYPE bigint",
    "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    "ALTER TABLE t ALTER COLUMN c DROP NOT NULL",
    "ALTER TABLE t ALTER COLUMN b SET DEFAULT 'y'",
    "ALTER TABLE t ALTER COLUMN b DROP DEFAULT",
    "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (p) REFERENCES parent (id) NOT VALID",
    "ALTER TABLE t ADD CONSTRAINT t_pos CHECK (id > 0)",
    "ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE (b)",
    "ALTER TABLE t VALIDATE CONSTRAINT t_a_check",
    "ALTER TABLE t DROP CONSTRAINT t_a_check",
    "ALTER TABLE t RENAME COLUMN b TO b2",
    "ALTER TABLE t RENAME TO t2",
    "ALTER TABLE t RENAME CONSTRAINT t_a_check TO t_a_positive",
    "CREATE TRIGGER t_noop BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION noop()",
    "COMMENT ON TABLE t IS 'a table'",
    "COMMENT ON COLUMN t.a IS 'a column'",
    "UPDATE t SET a = 1 WHERE id = 1",
    "DELETE FROM t WHERE id = 1",
    "INSERT INTO t (id) VALUES (1)",
    "TRUNCATE t",
    "CLUSTER t USING t_a",
    "REINDEX TABLE t",
    "LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE",
    "LOCK TABLE t IN ROW SHARE MODE",
    "DROP TABLE t",
    "ANALYZE t",
]


@pytest.fixture(scope="module")
def conn(pg_admin_dsn: str) -> psycopg.Connection:
    from bot.embedded import create_database

    dsn = create_database(pg_admin_dsn, "locks_test")
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute(SCHEMA)
    connection = psycopg.connect(dsn)
    yield connection  # type: ignore[misc]
    connection.close()


def held_lock(conn: psycopg.Connection, statement: str) -> LockLevel:
    """The strongest lock this transaction holds on ``t`` after running ``statement`` (then rolled back)."""
    oid = conn.execute("SELECT 't'::regclass::oid").fetchone()[0]  # type: ignore[index]
    try:
        conn.execute(statement)
        modes = [
            r[0]
            for r in conn.execute(
                "SELECT mode FROM pg_locks WHERE locktype = 'relation' AND relation = %s "
                "AND pid = pg_backend_pid() AND granted",
                (oid,),
            )
        ]
    finally:
        conn.rollback()
    names = {level.value.replace(" ", "").lower() + "lock": level for level in LockLevel}
    return LockLevel.strongest([names[m.lower()] for m in modes])


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_analysed_lock_is_the_lock_postgresql_takes(conn: psycopg.Connection, statement: str) -> None:
    analysis = analyze(statement + ";", catalog=OfflineCatalog(180000), policy=load_policy().complexity)
    said = LockLevel.strongest([op.lock for op in analysis.operations if op.table in ("t", None)])
    assert said == held_lock(conn, statement)
