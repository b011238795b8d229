"""Type changes PostgreSQL makes in place, checked against a real server (relfilenode kept or not)."""

from __future__ import annotations

import psycopg
import pytest

from bot.sql.typechange import rewrites

CASES = [
    ("character varying(50)", "varchar(200)", False),
    ("character varying(50)", "varchar(20)", True),
    ("character varying(50)", "varchar", False),
    ("character varying(50)", "text", False),
    ("text", "varchar", False),
    ("text", "varchar(10)", True),
    ("numeric(10,2)", "numeric(12, 2)", False),
    ("numeric(10,2)", "numeric(12, 3)", True),
    ("numeric(10,2)", "numeric", False),
    ("integer", "bigint", True),
    ("integer", "integer", False),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_rewrites_matches_postgresql(target_dsn: str, old: str, new: str, expected: bool) -> None:
    assert rewrites(old, new) is expected
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE t (c {old}); INSERT INTO t VALUES (1)")
        before = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
        conn.execute(f"ALTER TABLE t ALTER COLUMN c TYPE {new}")
        after = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
    assert (before != after) is expected
