"""Every relation a statement locks, with the mode, is what PostgreSQL really holds (read from pg_locks)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import LiveCatalog
from bot.sql.model import Kind, LockLevel

SCHEMA = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE t (id int PRIMARY KEY, a int, b text DEFAULT 'x', p int, c int NOT NULL DEFAULT 0);
CREATE TABLE other (id int PRIMARY KEY, v int);
CREATE INDEX t_a ON t (a);
ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0) NOT VALID;
ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (p) REFERENCES parent (id) NOT VALID;
CREATE TABLE part (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE part0 PARTITION OF part FOR VALUES FROM (0) TO (10);
CREATE TABLE part1 (id int, k int);
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
"""
# Statements that lock existing tables; CONCURRENTLY and VACUUM cannot run in a transaction.
STATEMENTS = [
    "CREATE INDEX t_b ON t (b)",
    "ALTER TABLE t ADD COLUMN d int",
    "ALTER TABLE t ADD COLUMN z int REFERENCES parent (id)",
    "ALTER TABLE t DROP COLUMN b",
    "ALTER TABLE t ALTER COLUMN a TYPE bigint",
    "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    "ALTER TABLE t ALTER COLUMN c DROP NOT NULL",
    "ALTER TABLE t ALTER COLUMN b SET DEFAULT 'y'",
    "ALTER TABLE t ALTER COLUMN b DROP DEFAULT",
    "ALTER TABLE t ADD CONSTRAINT t_fk2 FOREIGN KEY (p) REFERENCES parent (id) NOT VALID",
    "ALTER TABLE t ADD CONSTRAINT t_fk3 FOREIGN KEY (p) REFERENCES parent (id)",
    "ALTER TABLE t ADD CONSTRAINT t_pos CHECK (id > 0)",
    "ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE (b)",
    "ALTER TABLE t VALIDATE CONSTRAINT t_a_check",
    "ALTER TABLE t VALIDATE CONSTRAINT t_fk",
    "ALTER TABLE t DROP CONSTRAINT t_a_check",
    "ALTER TABLE t DROP CONSTRAINT t_fk",
    "ALTER TABLE t ALTER CONSTRAINT t_fk DEFERRABLE",
    "ALTER TABLE t RENAME COLUMN b TO b2",
    "ALTER TABLE t RENAME TO t2",
    "ALTER TABLE t RENAME CONSTRAINT t_a_check TO t_a_positive",
    "ALTER TABLE t SET TABLESPACE pg_default",
    "ALTER TABLE t SET UNLOGGED",
    "ALTER TABLE t SET (fillfactor = 50)",
    "ALTER TABLE t SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)",
    "ALTER TABLE t SET (parallel_workers = 2, user_catalog_table = false)",
    "ALTER TABLE t ALTER COLUMN a SET STATISTICS 100",
    "ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL",
    "ALTER TABLE t CLUSTER ON t_a",
    "ALTER TABLE t DISABLE TRIGGER ALL",
    "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE t REPLICA IDENTITY FULL",
    "ALTER TABLE part ATTACH PARTITION part1 FOR VALUES FROM (10) TO (20)",
    "ALTER TABLE part DETACH PARTITION part0",
    "CREATE TABLE n (id int REFERENCES parent (id))",
    "CREATE TABLE n AS SELECT * FROM t JOIN other USING (id)",
    "CREATE VIEW w AS SELECT * FROM t",
    "CREATE TRIGGER t_noop BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION noop()",
    "CREATE POLICY pol ON t USING (true)",
    "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
    "CREATE STATISTICS st ON a, b FROM t",
    "COMMENT ON TABLE t IS 'a table'",
    "COMMENT ON COLUMN t.a IS 'a column'",
    "GRANT SELECT ON t TO PUBLIC",
    "SELECT * FROM t",
    "SELECT * FROM t FOR UPDATE",
    "SELECT set_config('lock_timeout', '1s', true)",
    "UPDATE t SET a = 1 WHERE id = 1",
    "UPDATE t SET a = other.v FROM other WHERE other.id = t.id",
    "DELETE FROM t WHERE id IN (SELECT id FROM other)",
    "INSERT INTO t (id) VALUES (1)",
    "INSERT INTO t (id, a) SELECT id, v FROM other",
    "WITH o AS (SELECT id FROM other) DELETE FROM t WHERE id IN (SELECT id FROM o)",
    "MERGE INTO t USING other o ON t.id = o.id WHEN MATCHED THEN UPDATE SET a = o.v",
    "COPY t FROM '/dev/null'",
    "TRUNCATE t",
    "CLUSTER t USING t_a",
    "REINDEX TABLE t",
    "REINDEX INDEX t_a",
    "DROP INDEX t_a",
    "LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE",
    "LOCK TABLE t IN ROW SHARE MODE",
    "DROP TABLE t",
    "ANALYZE t",
    "DO $$ BEGIN ALTER TABLE t ADD COLUMN e int; UPDATE other SET v = 1; END $$",
]
NAMES = {level.value.replace(" ", "").lower() + "lock": level for level in LockLevel}


@pytest.fixture(scope="module")
def dsn(pg_admin_dsn: str) -> Iterator[str]:
    from bot.embedded import create_database, drop_database

    dsn = create_database(pg_admin_dsn, "locks_test")
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute(SCHEMA)
    yield dsn
    drop_database(pg_admin_dsn, "locks_test")


def held_locks(conn: psycopg.Connection, statement: str) -> dict[str, LockLevel]:
    """The strongest lock this transaction holds on each table after ``statement`` (then rolled back).

    A relation the statement dropped has no name left in pg_class, so it cannot be listed here.
    """
    try:
        conn.execute(statement)
        rows = conn.execute(
            "SELECT c.relname::text, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid() AND l.granted "
            "AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'm')"
        ).fetchall()
        existing = {r[0] for r in conn.execute("SELECT relname::text FROM pg_class")}
    finally:
        conn.rollback()
    held: dict[str, LockLevel] = {}
    for name, mode in rows:
        held[name] = LockLevel.strongest([held.get(name, LockLevel.NONE), NAMES[mode.lower()]])
    return {**held, **{"__existing__": existing}}  # type: ignore[dict-item]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_every_lock_said_is_the_lock_postgresql_takes(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as catalog_conn, psycopg.connect(dsn) as conn:
        analysis = analyze(
            statement + ";", catalog=LiveCatalog(catalog_conn), policy=load_policy().complexity
        )
        held = held_locks(conn, statement)
    existing = held.pop("__existing__")  # type: ignore[arg-type]
    renamed = {op.table: op.details["new_name"] for op in analysis.operations if op.kind is Kind.RENAME_TABLE}
    said: dict[str, LockLevel] = {}
    for op in analysis.operations:
        for name, lock in op.locks.items():
            table = renamed.get(name, name)
            said[table] = LockLevel.strongest([said.get(table, LockLevel.NONE), lock])
    said = {t: lock for t, lock in said.items() if t in existing}  # type: ignore[operator]
    assert said == held
    assert {renamed.get(t, t) for t in analysis.tables} >= set(held)
