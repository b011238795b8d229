"""Transactions and settings as PostgreSQL runs a file (statement by statement, as psql does), checked on a
real server: what the analysis predicts to fail fails there, and the lock_timeout it believes in force is."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import LiveCatalog
from bot.sql.parse import parse_statements

SCHEMA = """
CREATE TYPE mood AS ENUM ('ok');
CREATE TABLE t (id int PRIMARY KEY, a int, m mood, keep text);
CREATE VIEW t_keep AS SELECT id, keep FROM t;
INSERT INTO t SELECT i, i, 'ok', 'k' FROM generate_series(1, 10) i;
"""
# (hazard code, a file PostgreSQL refuses, the same done the way it accepts)
FAILURES = [
    (
        "concurrently_in_transaction",
        "BEGIN;\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nCOMMIT;",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);",
    ),
    ("cannot_run_in_transaction", "BEGIN;\nVACUUM (FULL FALSE) t;\nCOMMIT;", "BEGIN;\nANALYZE t;\nCOMMIT;"),
    (
        "concurrently_in_transaction",
        "BEGIN;\nREINDEX (CONCURRENTLY) TABLE t;\nCOMMIT;",
        "BEGIN;\nREINDEX (CONCURRENTLY false) TABLE t;\nCOMMIT;",
    ),
    (
        "enum_value_used_in_transaction",
        "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nUPDATE t SET m = 'meh' WHERE id = 1;\nCOMMIT;",
        "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\nUPDATE t SET m = 'meh' WHERE id = 1;",
    ),
    ("dependent_objects", "ALTER TABLE t DROP COLUMN keep;", "ALTER TABLE t DROP COLUMN a;"),
    (
        "dependent_objects",
        "ALTER TABLE t ALTER COLUMN keep TYPE varchar(20);",
        "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
    ),
    ("dependent_objects", "DROP TABLE t;", "DROP VIEW t_keep;"),
]


@pytest.fixture
def db(target_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        yield conn


def codes(conn: psycopg.Connection, sql: str) -> set[str]:
    with psycopg.connect(conn.info.dsn, autocommit=True) as catalog_conn:
        analysis = analyze(sql, catalog=LiveCatalog(catalog_conn), policy=load_policy().complexity)
    return {h.code for h in analysis.hazards}


def run_as_psql(conn: psycopg.Connection, sql: str) -> None:
    for item in parse_statements(sql):
        conn.execute(item.statement.sql)


@pytest.mark.parametrize(("code", "failing", "working"), FAILURES)
def test_predicted_failures_fail_on_postgresql(
    db: psycopg.Connection, code: str, failing: str, working: str
) -> None:
    assert code in codes(db, failing)
    with pytest.raises(psycopg.Error):
        run_as_psql(db, failing)
    db.execute("ROLLBACK")
    assert code not in codes(db, working)
    run_as_psql(db, working)


# Files whose lock_timeout at the ALTER is what PostgreSQL's scoping makes it.
SETTINGS = [
    "BEGIN;\nSET LOCAL lock_timeout = '5s';\nCOMMIT;\nALTER TABLE t ADD COLUMN x int;",
    "BEGIN;\nSET LOCAL lock_timeout = '5s';\nALTER TABLE t ADD COLUMN x int;\nCOMMIT;",
    "SET LOCAL lock_timeout = '5s';\nALTER TABLE t ADD COLUMN x int;",
    "BEGIN;\nSET lock_timeout = '5s';\nROLLBACK;\nALTER TABLE t ADD COLUMN x int;",
    "BEGIN;\nSET lock_timeout = '5s';\nCOMMIT;\nALTER TABLE t ADD COLUMN x int;",
    "BEGIN;\nSET lock_timeout = '5s';\nSET LOCAL lock_timeout = 0;\nCOMMIT;\nALTER TABLE t ADD COLUMN x int;",
    "SET lock_timeout = '5s';\nRESET lock_timeout;\nALTER TABLE t ADD COLUMN x int;",
    "SET lock_timeout = '5s';\nRESET ALL;\nALTER TABLE t ADD COLUMN x int;",
    "SET lock_timeout = '5s';\nSET lock_timeout TO DEFAULT;\nALTER TABLE t ADD COLUMN x int;",
    "SET lock_timeout = '0s';\nALTER TABLE t ADD COLUMN x int;",
    "SELECT set_config('lock_timeout', '5s', false);\nALTER TABLE t ADD COLUMN x int;",
    "SELECT set_config('lock_timeout', '5s', true);\nALTER TABLE t ADD COLUMN x int;",
]


@pytest.mark.parametrize("sql", SETTINGS)
def test_the_lock_timeout_in_force_follows_postgresql_scoping(db: psycopg.Connection, sql: str) -> None:
    with psycopg.connect(db.info.dsn, autocommit=True) as session:
        for item in parse_statements(sql):
            if item.statement.sql.startswith("ALTER"):
                in_force = session.execute("SELECT current_setting('lock_timeout')").fetchone()[0]  # type: ignore[index]
            session.execute(item.statement.sql)
    missing = "missing_lock_timeout" in codes(db, sql)
    assert missing == (in_force in ("0", "0s"))


def test_nested_begin_commits_at_the_first_commit_as_predicted(db: psycopg.Connection) -> None:
    sql = "BEGIN;\nINSERT INTO t (id) VALUES (100);\nBEGIN;\nCOMMIT;\nINSERT INTO t (id) VALUES (1);\nCOMMIT;"
    assert "nested_transaction" in codes(db, sql)
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_as_psql(db, sql)
    assert db.execute("SELECT count(*) FROM t WHERE id = 100").fetchone() == (1,)  # committed, not undone


def test_a_transaction_left_open_loses_its_work(db: psycopg.Connection) -> None:
    sql = "BEGIN;\nCREATE TABLE lost (id int);"
    assert "transaction_left_open" in codes(db, sql)
    session = psycopg.connect(db.info.dsn, autocommit=True)
    run_as_psql(session, sql)
    session.close()  # as psql ends at the end of the file: no COMMIT sent
    assert db.execute("SELECT to_regclass('lost')").fetchone() == (None,)


def test_validate_in_the_same_transaction_holds_the_add_lock(db: psycopg.Connection) -> None:
    sql = (
        "BEGIN;\nALTER TABLE t ADD CONSTRAINT pos CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT pos;"
    )
    assert "validate_in_same_transaction" in codes(db, sql + "\nCOMMIT;")
    with psycopg.connect(db.info.dsn, autocommit=True) as session:
        run_as_psql(session, sql)
        held = session.execute(
            "SELECT mode FROM pg_locks WHERE relation = 't'::regclass AND pid = pg_backend_pid()"
        ).fetchall()
    assert ("AccessExclusiveLock",) in held


def test_set_not_null_is_proven_by_a_valid_check_in_the_live_catalog(db: psycopg.Connection) -> None:
    assert "set_not_null" in codes(db, "SET lock_timeout = '1s';\nALTER TABLE t ALTER COLUMN a SET NOT NULL;")
    db.execute("ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL)")
    assert "set_not_null" not in codes(
        db, "SET lock_timeout = '1s';\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"
    )


@pytest.mark.parametrize(("kind", "rewrites"), [("VIRTUAL", False), ("STORED", True)])
def test_a_generated_column_rewrites_only_when_stored(
    db: psycopg.Connection, kind: str, rewrites: bool
) -> None:
    sql = f"SET lock_timeout = '1s';\nALTER TABLE t ADD COLUMN twice int GENERATED ALWAYS AS (a * 2) {kind};"
    with psycopg.connect(db.info.dsn, autocommit=True) as catalog_conn:
        analysis = analyze(sql, catalog=LiveCatalog(catalog_conn), policy=load_policy().complexity)
    assert analysis.operations[1].rewrites_table is rewrites
    assert ("add_column_volatile_default" in {h.code for h in analysis.hazards}) is rewrites
    before = db.execute("SELECT pg_relation_filenode('t')").fetchone()
    run_as_psql(db, sql)
    assert (db.execute("SELECT pg_relation_filenode('t')").fetchone() != before) is rewrites
