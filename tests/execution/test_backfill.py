"""Batched backfill on a real PostgreSQL: the same rows get the same values as with the plain UPDATE.

Every table counts the updates of each row (``updated_count``, by trigger), so comparing whole tables with
the plain UPDATE's result also proves that no row was updated twice.
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from pglast import parse_sql

import bot.execution.backfill as backfill
from bot.execution.backfill import (
    BackfillBusy,
    BackfillPlan,
    BackfillProgress,
    BackfillResult,
    BackfillStalled,
    Key,
    NotBatchable,
    plan_backfill,
    run_backfill,
)
from bot.sql.operations import sql_of

KEYS = {"bigint": "g * 3", "uuid": "md5(g::text)::uuid", "text": "'k' || g"}

STATEMENTS = [
    "UPDATE items SET new_col = coalesce(old_col, -1) * 2, note = upper(note) WHERE new_col IS NULL",
    "UPDATE items AS i SET note = i.note || '!' WHERE i.old_col % 3 = 0 OR i.note IS NULL",
    "UPDATE items SET new_col = old_col",
]
# still matches a row it has updated: a batch done twice would show as '!!' and an updated_count of 2
REPEATABLE = "UPDATE items SET note = coalesce(note, '') || '!' WHERE old_col IS NOT NULL"


def make_items(dsn: str, *, key_type: str = "bigint", rows: int = 1200) -> None:
    """``items``: NULLs in every column but the key, keys not in insertion order for uuid and text."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE items (id {key_type} PRIMARY KEY, old_col int, new_col int, note text, "
            "updated_count int NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN NEW.updated_count := OLD.updated_count + 1; RETURN NEW; END$$"
        )
        conn.execute(
            "CREATE TRIGGER count_update BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION count_update()"
        )
        conn.execute(
            f"INSERT INTO items (id, old_col, new_col, note) SELECT {KEYS[key_type]}, nullif(g % 7, 0), "
            "CASE WHEN g % 5 = 0 THEN g END, CASE WHEN g % 4 <> 0 THEN 'n' || g END "
            f"FROM generate_series(1, {rows}) g"
        )


def contents(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM items ORDER BY id").fetchall()


def plain_update(dsn: str, statement: str) -> tuple[list[tuple[Any, ...]], int]:
    """The table after the plain UPDATE (rolled back), and how many rows it updated."""
    with psycopg.connect(dsn) as conn:
        before = contents(conn)
        updated = conn.execute(statement).rowcount
        after = contents(conn)
        conn.rollback()
    assert after != before and updated > 0
    return after, updated


def table(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return contents(conn)


def planned(statement: str, dsn: str) -> BackfillPlan:
    plan = plan_backfill(statement, dsn)
    assert isinstance(plan, BackfillPlan), plan
    return plan


@dataclass
class Run:
    """One run_backfill call with what it reported and checkpointed."""

    checkpoints: list[Key] = field(default_factory=list)
    reports: list[BackfillProgress] = field(default_factory=list)

    def __call__(self, dsn: str, plan: BackfillPlan, **settings: Any) -> BackfillResult:
        defaults: dict[str, Any] = {
            "batch_rows": 100,
            "pause_seconds": 0,
            "max_lock_seconds": 5,
            "lock_key": 7,
            "resume_after": None,
            "cancelled": lambda: False,
        }
        return run_backfill(
            dsn,
            plan,
            progress=self.reports.append,
            checkpoint=self.checkpoints.append,
            **(defaults | settings),
        )


@pytest.mark.parametrize("key_type", sorted(KEYS))
@pytest.mark.parametrize("statement", STATEMENTS)
def test_batches_update_the_same_rows_to_the_same_values_as_the_plain_update(
    target_dsn: str, key_type: str, statement: str
) -> None:
    make_items(target_dsn, key_type=key_type)
    expected, updated = plain_update(target_dsn, statement)
    run = Run()
    result = run(target_dsn, planned(statement, target_dsn))

    assert table(target_dsn) == expected
    assert (result.rows_updated, result.batches) == (updated, math.ceil(updated / 100))
    assert run.checkpoints == sorted(run.checkpoints) and len(set(run.checkpoints)) == result.batches
    assert run.checkpoints[-1] == result.last_key
    last = run.reports[-1]
    assert (last.rows_done, last.rows_total, last.total_is_exact, last.seconds_left) == (
        updated,
        updated,
        True,
        0,
    )
    assert last.batches == result.batches and last.rows_per_second > 0
    assert 0 < result.longest_lock_seconds == last.longest_lock_seconds < 5
    assert not result.cancelled and result.splits == 0 and result.resumed_from is None


def test_a_batch_is_the_statement_with_one_extra_conjunct_on_the_key(target_dsn: str) -> None:
    make_items(target_dsn)
    original = parse_sql(STATEMENTS[1])[0].stmt
    plan = planned(STATEMENTS[1], target_dsn)
    assert (plan.table, plan.key, plan.key_type) == ("items", "id", "bigint")
    for batched_sql, key_range in [
        (plan.sql.update.from_start, "i.id <= $1"),
        (plan.sql.update.after_key, "i.id > $1 AND i.id <= $2"),
    ]:
        batched = parse_sql(batched_sql)[0].stmt
        assert (batched.relation, batched.targetList) == (original.relation, original.targetList)
        first, extra = batched.whereClause.args
        assert first == original.whereClause and sql_of(extra) == key_range


@pytest.mark.parametrize("key_type", sorted(KEYS))
def test_a_cancelled_run_resumes_after_its_checkpoint_and_does_no_batch_twice(
    target_dsn: str, key_type: str
) -> None:
    make_items(target_dsn, key_type=key_type)
    expected, updated = plain_update(target_dsn, REPEATABLE)
    plan = planned(REPEATABLE, target_dsn)
    first = Run()
    interrupted = first(target_dsn, plan, cancelled=lambda: len(first.checkpoints) >= 3)
    assert interrupted.cancelled and interrupted.batches == 3 and interrupted.rows_updated == 300
    assert table(target_dsn) != expected

    saved = json.loads(json.dumps(first.checkpoints[-1], default=str))  # as the caller would persist it
    second = Run()
    resumed = second(target_dsn, plan, resume_after=saved)

    assert table(target_dsn) == expected
    assert interrupted.rows_updated + resumed.rows_updated == updated
    assert resumed.resumed_from == saved and second.reports[0].rows_total == updated - 300
    assert set(first.checkpoints).isdisjoint(second.checkpoints)


def test_the_advisory_lock_refuses_a_second_run_while_the_first_pauses_between_batches(
    target_dsn: str,
) -> None:
    make_items(target_dsn)
    statement = STATEMENTS[0]
    expected, _ = plain_update(target_dsn, statement)
    plan = planned(statement, target_dsn)
    paused, resume = threading.Event(), threading.Event()

    def hold_after_first_batch(report: BackfillProgress) -> None:
        if report.batches == 1:
            paused.set()
            assert resume.wait(30)

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            run_backfill,
            target_dsn,
            plan,
            batch_rows=100,
            pause_seconds=0,
            max_lock_seconds=5,
            lock_key=7,
            resume_after=None,
            progress=hold_after_first_batch,
            checkpoint=lambda key: None,
            cancelled=lambda: False,
        )
        assert paused.wait(30)
        midway = table(target_dsn)
        with pytest.raises(BackfillBusy, match="advisory lock 7"):
            Run()(target_dsn, plan, lock_key=7)
        assert table(target_dsn) == midway
        resume.set()
        first.result(timeout=60)

    assert table(target_dsn) == expected
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)


def test_a_batch_over_the_lock_budget_is_rolled_back_and_split(target_dsn: str) -> None:
    make_items(target_dsn, rows=200)
    statement = STATEMENTS[2]
    expected, updated = plain_update(target_dsn, statement)
    with psycopg.connect(target_dsn, autocommit=True) as conn:  # 10 ms a row: 100 rows take 1 s
        conn.execute(
            "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END$$"
        )
        conn.execute(
            "CREATE TRIGGER slow_row BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION slow_row()"
        )
    run = Run()
    result = run(target_dsn, planned(statement, target_dsn), batch_rows=100, max_lock_seconds=1.0)

    assert table(target_dsn) == expected and result.rows_updated == updated
    assert result.splits >= 1 and run.reports[0].splits == 1 and run.reports[0].batch_rows == 50
    assert result.longest_lock_seconds < 1.0


def test_a_row_locked_past_the_budget_stops_the_run_after_the_batches_before_it(target_dsn: str) -> None:
    make_items(target_dsn, rows=20)  # keys 3, 6, … 60
    plan = planned(STATEMENTS[2], target_dsn)
    with psycopg.connect(target_dsn) as holder:
        holder.execute("SELECT * FROM items WHERE id = 15 FOR UPDATE")
        run = Run()
        with pytest.raises(BackfillStalled, match="after key 12"):
            run(target_dsn, plan, batch_rows=8, max_lock_seconds=0.4)
    assert run.checkpoints == [12]
    assert [count for *_, count in table(target_dsn)] == [1] * 4 + [0] * 16


def test_the_planners_estimate_stands_in_for_a_count_that_takes_too_long(
    target_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_items(target_dsn, rows=200)
    with psycopg.connect(target_dsn, autocommit=True) as conn:  # 2 ms a row: counting 200 rows takes 0.4 s
        conn.execute(
            "CREATE FUNCTION slow_true(bigint) RETURNS boolean LANGUAGE plpgsql AS "
            "$$BEGIN PERFORM pg_sleep(0.002); RETURN true; END$$"
        )
    statement = "UPDATE items SET new_col = 1 WHERE slow_true(id)"
    expected, _ = plain_update(target_dsn, statement)
    monkeypatch.setattr(backfill, "COUNT_SECONDS", 0.05)
    run = Run()
    run(target_dsn, planned(statement, target_dsn))
    assert table(target_dsn) == expected
    assert not run.reports[0].total_is_exact and run.reports[0].rows_total > 0


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("DELETE FROM items", "only an UPDATE is batched, not Delete"),
        ("UPDATE items SET note = 'x'; UPDATE items SET note = 'y'", "one statement, not 2"),
        ("WITH x AS (SELECT 1) UPDATE items SET note = 'x'", "WITH"),
        ("UPDATE items SET note = 'x' RETURNING id", "RETURNING"),
        ("UPDATE items SET note = p.b FROM pair p WHERE p.a = items.id", "joins other tables"),
        ("UPDATE items SET note = 'x' WHERE CURRENT OF c", "CURRENT OF"),
        ("UPDATE items SET old_col = (SELECT max(old_col) FROM items)", "reads items in a subquery"),
        ("UPDATE items SET id = id + 1", "sets the primary key id"),
        ("UPDATE missing SET a = 1", "missing does not exist"),
        ("UPDATE nokey SET a = 1", "nokey has no primary key"),
        ("UPDATE pair SET b = 1", "has 2 columns"),
        ("UPDATE stamped SET a = 1", "is timestamp with time zone"),
    ],
)
def test_statements_that_cannot_run_in_key_ranges_say_why(
    target_dsn: str, statement: str, reason: str
) -> None:
    make_items(target_dsn, rows=10)
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nokey (a int)")
        conn.execute("CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b))")
        conn.execute("CREATE TABLE stamped (at timestamptz PRIMARY KEY, a int)")
    plan = plan_backfill(statement, target_dsn)
    assert isinstance(plan, NotBatchable) and reason in plan.reason
