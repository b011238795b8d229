"""Benchmark: plan a migration of 10,000 statements; target under 2 s for the whole command.

Run: ``python bench/plan_bench.py [--statements N] [--repeat R]``. Prints statements per second for
the in-process plan and for the whole ``migrate-bot plan`` command, each as a ratio to the baseline
measured in the same run: pglast parsing the same file, the floor no analysis can go below.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pglast import parse_sql

from bot.app import planning_only_config
from bot.plans import draft_plan
from bot.sql.catalog import OfflineCatalog

TARGET_SECONDS = 2.0

TEMPLATES = [
    "ALTER TABLE app.t{i} ADD COLUMN c{i} text;",
    "CREATE INDEX CONCURRENTLY idx_t{i}_c ON app.t{i} (c{i});",
    "UPDATE app.t{i} SET c{i} = 'x' WHERE id BETWEEN {i} AND {i} + 1000;",
    "COMMENT ON TABLE app.t{i} IS 'table {i}';",
    "CREATE TABLE app.n{i} (id bigint PRIMARY KEY, t{i}_id bigint REFERENCES app.t{i} (id), note text);",
    "ALTER TABLE app.t{i} ALTER COLUMN c{i} SET DEFAULT 'x';",
    "ALTER TABLE app.t{i} ADD CONSTRAINT ck_{i} CHECK (length(c{i}) < 100) NOT VALID;",
    "ALTER TABLE app.t{i} RENAME COLUMN c{i} TO d{i};",
    "CREATE VIEW app.v{i} AS SELECT id FROM app.t{i};",
    "ALTER TABLE app.t{i} VALIDATE CONSTRAINT ck_{i};",
]


def migration(statements: int) -> str:
    lines = ["SET lock_timeout = '5s';"]
    lines += [TEMPLATES[i % len(TEMPLATES)].format(i=i) for i in range(statements - 1)]
    return "\n".join(lines) + "\n"


def best_of(repeat: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "9999_big_migration.sql"
        sql = migration(args.statements)
        path.write_text(sql)
        config = planning_only_config(Path(tmp))
        catalog = OfflineCatalog(180000)

        baseline = best_of(args.repeat, lambda: parse_sql(sql))
        in_process = best_of(args.repeat, lambda: draft_plan(config, None, path.name, catalog=catalog))
        command = [sys.executable, "-m", "bot.cli", "plan", str(path), "--format", "json"]

        def run_command() -> None:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

        whole = best_of(args.repeat, run_command)

    n = args.statements
    print(f"migration: {n:,} statements, {len(sql):,} bytes; best of {args.repeat}")
    print(f"{'measure':<34}{'seconds':>9}{'stmts/s':>12}{'x baseline':>12}")
    for name, seconds in [
        ("baseline: pglast parse only", baseline),
        ("plan, in process", in_process),
        ("`migrate-bot plan --format json`", whole),
    ]:
        print(f"{name:<34}{seconds:>9.3f}{n / seconds:>12,.0f}{seconds / baseline:>12.1f}")
    verdict = "PASS" if whole < TARGET_SECONDS else "FAIL"
    print(f"target: whole command under {TARGET_SECONDS:.1f} s -> {verdict} ({whole:.2f} s)")
    return 0 if whole < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
