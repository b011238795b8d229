"""Segments: what runs in one transaction and what runs alone, decided from the analysis."""

from __future__ import annotations

import psycopg
import pytest

from bot.execution.segments import Segment, Unrunnable, from_data, plan_segments, split, to_data
from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import OfflineCatalog
from bot.sql.fingerprint import schema_fingerprint
from bot.sql.parse import parse_statements
from bot.sql.rollback import generate_rollback
from tests.execution.conftest import apply


def segments_of(sql: str) -> list[tuple[bool, list[str]]]:
    analysis = analyze(sql, catalog=OfflineCatalog(180000), policy=load_policy().complexity)
    return [
        (s.transactional, [st.sql for st in s.statements])
        for s in split(analysis.statements, analysis.operations)
    ]


def test_an_explicit_block_is_one_transaction_without_its_begin_and_commit() -> None:
    sql = "BEGIN;\nSET LOCAL lock_timeout = '5s';\nCREATE TABLE a (id int);\nCOMMIT;\n"
    assert segments_of(sql) == [(True, ["SET LOCAL lock_timeout = '5s'", "CREATE TABLE a (id int)"])]


def test_statements_outside_blocks_run_together_until_one_cannot_run_in_a_transaction() -> None:
    sql = (
        "SET lock_timeout = '5s';\nALTER TABLE t ADD COLUMN c int;\n"
        "CREATE INDEX CONCURRENTLY i ON t (c);\nCOMMENT ON COLUMN t.c IS 'x';\n"
    )
    assert segments_of(sql) == [
        (True, ["SET lock_timeout = '5s'", "ALTER TABLE t ADD COLUMN c int"]),
        (False, ["CREATE INDEX CONCURRENTLY i ON t (c)"]),
        (True, ["COMMENT ON COLUMN t.c IS 'x'"]),
    ]


def test_a_rollback_inside_a_migration_is_not_replayed() -> None:
    with pytest.raises(Unrunnable, match="line 2"):
        segments_of("BEGIN;\nROLLBACK;\n")


def test_segments_round_trip_as_data_with_lines_and_what_they_undo() -> None:
    analysis = analyze(
        "CREATE TABLE a (id int);\nDROP TABLE b;\n",
        catalog=OfflineCatalog(180000),
        policy=load_policy().complexity,
    )
    segments = split(analysis.statements, analysis.operations, undoes={1: 7})
    assert from_data(to_data(segments)) == segments
    assert [(s.line, s.undoes) for s in segments[0].statements] == [(1, None), (2, 7)]
    assert isinstance(segments[0], Segment)


def generated(sql: str) -> tuple[list[Segment], list[Segment], str]:
    """The forward segments, the generated rollback's, and its SQL."""
    catalog = OfflineCatalog(180000)
    analysis = analyze(sql, catalog=catalog, policy=load_policy().complexity)
    rollback = generate_rollback(parse_statements(sql), catalog=catalog)
    stored = plan_segments(analysis, rollback, None)
    assert stored["problem"] is None
    return from_data(stored["forward"]), from_data(stored["rollback"]), rollback.sql


MIXED = "ALTER TABLE t ADD COLUMN c int;\nCREATE INDEX CONCURRENTLY i ON t (c);\nCREATE TABLE u (id int);\n"


def test_a_generated_rollback_runs_its_steps_in_reverse_and_knows_what_each_reverses() -> None:
    _, back, sql = generated(MIXED)
    assert [(s.transactional, [(st.undoes, st.sql.split()[0]) for st in s.statements]) for s in back] == [
        (True, [(2, "DROP")]),
        (False, [(1, "DROP")]),  # CONCURRENTLY, alone, before the column its index is on goes
        (True, [(0, "ALTER")]),
    ]
    assert back[1].statements[0].sql == "DROP INDEX CONCURRENTLY i"
    lines = sql.splitlines()
    assert all(lines[s.line - 1].startswith(s.sql) for seg in back for s in seg.statements)


def test_a_generated_rollback_of_a_mixed_migration_undoes_it_on_postgresql(target_dsn: str) -> None:
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
        before = schema_fingerprint(conn)
    forward, back, _ = generated(MIXED)
    assert apply(target_dsn, forward).failure is None
    result = apply(target_dsn, back)
    assert result.failure is None, result.failure
    with psycopg.connect(target_dsn) as conn:
        assert schema_fingerprint(conn) == before
