"""Batched backfill: an UPDATE planned as a data migration, run in primary-key ranges (the guide's Phase 2).

One long UPDATE holds the row locks of every row it touched until it commits, and its dead rows and WAL
come all at once. Here each batch is its own short transaction with a local ``lock_timeout`` and
``statement_timeout`` (``set_config(…, true)``: SET LOCAL with parameters) under the row-lock budget,
so no batch holds its row locks longer than ``max_lock_seconds``; a batch that runs out of time is rolled
back and its range retried at half the size (for the rest of the run). Batches are keyset pages of the
rows the WHERE matches (``key > last ORDER BY key LIMIT n``), so each updates about ``batch_rows`` rows
however selective the WHERE is, and each evaluates WHERE and SET in its own snapshot: ``now()`` is the
batch's time.

The run holds a session advisory lock on ``lock_key`` from its start to its end, so a second run of the
same plan is refused at once; a per-batch ``pg_advisory_xact_lock`` would be free during every pause,
letting a second run slip in and interleave. After each commit the caller gets the last key done to
persist: a restart resumes after it, and no committed batch runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from pglast import ast

from bot.execution.backfill_sql import BatchSql, batch_sql, sets_column, unbatchable_shape
from bot.execution.target import scalar
from bot.sql.operations import table_name
from bot.sql.parse import parse_statements

Key = int | str | UUID

# Keys whose btree order pages cleanly; ranges of other types (timestamps, numerics) work too, but a
# primary key of those is rare enough that refusing keeps the tested surface small.
KEY_TYPES = frozenset({"smallint", "integer", "bigint", "uuid", "text", "character varying"})
COUNT_SECONDS = 5.0  # the initial count may take this long; beyond it the planner's estimate stands in
LOCK_WAIT_SHARE = 0.5  # of the budget a batch may wait for one lock: behind a long transaction, give up early
COMMIT_SHARE = 0.1  # of the budget kept for COMMIT (its WAL flush) after the UPDATE's own timeout

_PRIMARY_KEY = (
    "SELECT a.attname::text, a.atttypid::regtype::text FROM pg_index i "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
    "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary"
)
_SET_TIMEOUTS = "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)"


class BackfillError(RuntimeError):
    """The backfill stopped; every batch committed before it is checkpointed."""


class BackfillBusy(BackfillError):
    """Another run holds the plan's advisory lock."""


class BackfillStalled(BackfillError):
    """A batch of one row could not finish within the lock budget: a lock held elsewhere, most likely."""


@dataclass(frozen=True)
class NotBatchable:
    reason: str


@dataclass(frozen=True)
class BackfillPlan:
    statement: str  # the UPDATE as written
    table: str
    key: str  # the single-column primary key the batches range over
    key_type: str
    sql: BatchSql


@dataclass(frozen=True)
class BackfillProgress:
    rows_done: int  # by this run
    batches: int
    elapsed_seconds: float
    rows_per_second: float
    rows_total: int  # rows this run expects to update
    total_is_exact: bool  # counted, or the planner's estimate when counting took over COUNT_SECONDS
    seconds_left: float | None  # None until a row is done
    longest_lock_seconds: float  # the longest any batch (a rolled-back one too) held its row locks
    batch_rows: int  # the batch size now: halved by each split
    splits: int  # batches that ran out of time and were retried at half the size
    last_key: Key | None


@dataclass(frozen=True)
class BackfillResult:
    rows_updated: int
    batches: int
    duration_seconds: float
    longest_lock_seconds: float
    resumed_from: Key | None
    last_key: Key | None
    splits: int
    cancelled: bool


def plan_backfill(statement_sql: str, dsn: str) -> BackfillPlan | NotBatchable:
    """How ``statement_sql`` runs in key ranges on the target, or why it cannot."""
    parsed = parse_statements(statement_sql)
    if len(parsed) != 1:
        return NotBatchable(f"a backfill is one statement, not {len(parsed)}")
    node = parsed[0].node
    if reason := unbatchable_shape(node):
        return NotBatchable(reason)
    assert isinstance(node, ast.UpdateStmt)  # unbatchable_shape refuses any other statement
    table = table_name(node.relation)
    with psycopg.connect(dsn) as conn:
        if scalar(conn, "SELECT to_regclass(%s)", [table]) is None:
            return NotBatchable(f"{table} does not exist on the target")
        keys = conn.execute(_PRIMARY_KEY, (table,)).fetchall()
    if not keys:
        return NotBatchable(f"{table} has no primary key to batch by")
    if len(keys) > 1:
        return NotBatchable(
            f"{table}'s primary key has {len(keys)} columns: batches need a single-column key"
        )
    ((key, key_type),) = keys
    if key_type not in KEY_TYPES:
        return NotBatchable(
            f"{table}'s primary key {key} is {key_type}: batched keys are {sorted(KEY_TYPES)}"
        )
    if sets_column(node, key):
        return NotBatchable(f"sets the primary key {key}: rows would move into ranges not yet done")
    return BackfillPlan(parsed[0].statement.sql, table, key, key_type, batch_sql(node, key))


def run_backfill(
    dsn: str,
    plan: BackfillPlan,
    *,
    batch_rows: int,
    pause_seconds: float,
    max_lock_seconds: float,
    lock_key: int,
    resume_after: Key | None,
    progress: Callable[[BackfillProgress], None],
    checkpoint: Callable[[Key], None],
    cancelled: Callable[[], bool],
) -> BackfillResult:
    """Run ``plan`` batch by batch after key ``resume_after`` (None: from the start) until no row is left.

    Raises BackfillBusy when another run holds ``lock_key``, BackfillStalled when even one row cannot be
    updated within ``max_lock_seconds``.
    """
    started = time.monotonic()
    timeouts = [_ms(max_lock_seconds * LOCK_WAIT_SHARE), _ms(max_lock_seconds * (1 - COMMIT_SHARE))]
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.RawCursor) as conn:
        if not scalar(conn, "SELECT pg_try_advisory_lock($1)", [lock_key]):
            raise BackfillBusy(f"another backfill holds advisory lock {lock_key}")
        # a generic plan would not know how narrow a batch's key range is
        conn.execute("SET plan_cache_mode = force_custom_plan")
        total, exact = _rows_left(conn, plan.sql, resume_after)
        after, limit = resume_after, batch_rows
        rows = batches = splits = 0
        longest = 0.0
        stopped = False

        def report() -> None:
            elapsed = time.monotonic() - started
            rate = rows / elapsed if elapsed > 0 else 0.0
            left = max(total - rows, 0) / rate if rate else None
            progress(
                BackfillProgress(
                    rows, batches, elapsed, rate, total, exact, left, longest, limit, splits, after
                )
            )

        while True:
            if batches or splits:
                time.sleep(pause_seconds)
            if cancelled():
                stopped = True
                break
            upto = scalar(conn, *plan.sql.bound.bind(after, limit))
            if upto is None:
                break
            done, held = _batch(conn, plan.sql.update.bind(after, upto), timeouts)
            longest = max(longest, held)
            if done is None:
                if limit == 1:
                    raise BackfillStalled(
                        f"the row of {plan.table} after key {after!r} could not be updated within "
                        f"{max_lock_seconds} s: another transaction holds it? resume after {after!r} later"
                    )
                limit, splits = limit // 2, splits + 1
            else:
                rows, batches, after = rows + done, batches + 1, upto
                checkpoint(upto)
            report()
    return BackfillResult(
        rows, batches, time.monotonic() - started, longest, resume_after, after, splits, stopped
    )


def _batch(
    conn: psycopg.Connection, query: tuple[str, list[Any]], timeouts: list[str]
) -> tuple[int | None, float]:
    """Rows one batch updated (None: it ran out of time, rolled back), and how long it held row locks."""
    started = time.perf_counter()
    try:
        with conn.transaction():
            conn.execute(_SET_TIMEOUTS, timeouts)
            rows: int | None = conn.execute(*query).rowcount
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
        rows = None
    return rows, time.perf_counter() - started


def _rows_left(conn: psycopg.Connection, sql: BatchSql, after: Key | None) -> tuple[int, bool]:
    """Rows left to update and whether counted: a count if it takes under COUNT_SECONDS, else EXPLAIN's."""
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('statement_timeout', $1, true)", [_ms(COUNT_SECONDS)])
            return scalar(conn, *sql.count.bind(after)), True
    except psycopg.errors.QueryCanceled:
        explained = scalar(conn, *sql.estimate.bind(after))
        return int(explained[0]["Plan"]["Plan Rows"]), False


def _ms(seconds: float) -> str:
    """A timeout setting in milliseconds; at least 1, since 0 turns the timeout off."""
    return str(max(1, round(seconds * 1000)))
