"""Benchmark: how fast a migration is planned, against what a floor or a rival takes in the same run.

Run: ``python bench/plan_bench.py [--statements N] [--repeat R] [--big-mb M]``. The machine may be shared
and noisy, so every target is a ratio to something measured in the same run, or a fixed bound:

- the whole ``migrate-bot plan`` command on N statements (default 10,000) under 2 s;
- one small file planned in at most 2x what Python needs to start and parse it with pglast;
- N statements planned in no more than squawk-cli's time on the same file (when squawk is installed);
- a file of M MB (default 10; 0 skips it) planned in under 15 s and 500 MB, as JSON and as text, and its
  stored plan's Slack message redrawn in under 1 s (against rebuilding its analysis, what every redraw
  did before).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pglast import parse_sql

from bot.config import BotConfig, planning_only_config
from bot.drafting import draft_plan
from bot.sql.catalog import OfflineCatalog
from bot.sql.model import Analysis

TARGET_SECONDS = 2.0
SMALL_RATIO = 2.0
BIG_SECONDS, BIG_MB = 15.0, 500
REDRAW_SECONDS = 1.0

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
SMALL = "SET lock_timeout = '5s';\nALTER TABLE app.users ADD COLUMN flag boolean DEFAULT false;\n"


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


def plan_command(path: Path, form: str = "json") -> list[str]:
    return [sys.executable, "-m", "bot.cli", "plan", str(path), "--format", form]


# Commands run as an installed bot runs: its modules compiled once, as pip compiles an installed package's
# (and pglast's, the floor's, are); PYTHONDONTWRITEBYTECODE in the caller's environment would make every
# run compile the bot's modules again (0.1 s) but not pglast's.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(command: list[str]) -> None:
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)


def peak_mb(command: list[str]) -> tuple[float, float]:
    """Seconds and peak resident MB of one run, measured in a child of its own."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True, env=ENV
    )
    seconds, mb = out.stdout.split()
    return float(seconds), float(mb)


def redraw_seconds(config: BotConfig, tmp: Path, name: str, repeat: int) -> tuple[float, float]:
    """A plan of ``name`` stored, then: the seconds its analysis takes to rebuild from the store (what each
    redraw of its message did before plans kept a summary; once, it is slow), and the best of ``repeat``
    redraws now (the plan read and its Slack message drawn)."""
    from bot.approvals import approval_status
    from bot.plans import create_plan
    from bot.views import plan_view
    from handlers.blocks import plan_blocks
    from storage.db import Database
    from storage.models import PlanRecord

    db = Database(f"sqlite:///{tmp}/bench-state.db")
    db.upgrade()
    draft = draft_plan(config, None, name, catalog=OfflineCatalog(180000))
    with db.session() as session:
        plan_id = create_plan(
            session, draft, author="U0BENCH", channel_id="C0BENCH", now=datetime.now(UTC)
        ).id
    del draft

    def rebuild() -> None:
        with db.reading() as session:
            plan = session.get(PlanRecord, plan_id)
            assert plan is not None
            Analysis.from_dict(plan.analysis)

    def redraw() -> None:
        with db.reading() as session:
            plan = session.get(PlanRecord, plan_id)
            assert plan is not None
            plan_blocks(plan_view(config, plan, approval_status(config, plan)))

    return best_of(1, rebuild), best_of(repeat, redraw)


def squawk() -> str | None:
    local = Path(sys.executable).with_name("squawk")
    return str(local) if local.exists() else shutil.which("squawk")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-mb", type=float, default=10.0)
    args = parser.parse_args()
    n, verdicts = args.statements, []

    with tempfile.TemporaryDirectory() as tmp:
        path, small = Path(tmp) / "9999_big_migration.sql", Path(tmp) / "0001_small.sql"
        sql = migration(n)
        path.write_text(sql)
        small.write_text(SMALL)
        config = planning_only_config(Path(tmp))
        catalog = OfflineCatalog(180000)

        baseline = best_of(args.repeat, lambda: parse_sql(sql))
        in_process = best_of(args.repeat, lambda: draft_plan(config, None, path.name, catalog=catalog))
        whole = best_of(args.repeat, lambda: run(plan_command(path)))
        print(f"migration: {n:,} statements, {len(sql):,} bytes; best of {args.repeat}")
        print(f"{'measure':<34}{'seconds':>9}{'stmts/s':>12}{'x baseline':>12}")
        for name, seconds in [
            ("baseline: pglast parse only", baseline),
            ("plan, in process", in_process),
            ("`migrate-bot plan --format json`", whole),
        ]:
            print(f"{name:<34}{seconds:>9.3f}{n / seconds:>12,.0f}{seconds / baseline:>12.1f}")
        verdicts.append(
            ("whole command on the file", whole < TARGET_SECONDS, f"{whole:.2f} s < {TARGET_SECONDS} s")
        )

        floor_code = f"import pglast; pglast.parse_sql(open({str(small)!r}).read())"
        run(plan_command(small))  # compiles what it imports, once
        floor = best_of(args.repeat, lambda: run([sys.executable, "-c", floor_code]))
        small_plan = best_of(args.repeat, lambda: run(plan_command(small)))
        ratio = small_plan / floor
        verdicts.append(
            (
                "small file vs python + pglast",
                ratio <= SMALL_RATIO,
                f"{small_plan:.2f} s / {floor:.2f} s = {ratio:.1f}x",
            )
        )

        rival = squawk()
        if rival is None:
            print("squawk-cli not installed (pip install squawk-cli): that ratio is not measured")
        else:
            theirs = best_of(args.repeat, lambda: run([rival, str(path)]))
            ratio = whole / theirs
            verdicts.append(
                ("same file vs squawk-cli", ratio <= 1.0, f"{whole:.2f} s / {theirs:.2f} s = {ratio:.1f}x")
            )

        if args.big_mb:
            big = Path(tmp) / "9998_ten_megabytes.sql"
            per_statement = len(sql) / n
            big.write_text(migration(int(args.big_mb * 1_000_000 / per_statement)))
            size = big.stat().st_size / 1e6
            for form in ("json", "text"):  # what pipelines read, and what people do (the default)
                seconds, mb = peak_mb(plan_command(big, form))
                verdicts.append(
                    (
                        f"{size:.0f} MB file, {form}",
                        seconds < BIG_SECONDS and mb < BIG_MB,
                        f"{seconds:.1f} s (< {BIG_SECONDS:.0f}), {mb:,.0f} MB (< {BIG_MB})",
                    )
                )
            rebuilt, redrawn = redraw_seconds(config, Path(tmp), big.name, args.repeat)
            verdicts.append(
                (
                    "its stored plan redrawn",
                    redrawn < REDRAW_SECONDS,
                    f"{redrawn:.2f} s (< {REDRAW_SECONDS:.0f}); its analysis rebuilt (each redraw before) "
                    f"{rebuilt:.1f} s = {rebuilt / redrawn:,.0f}x",
                )
            )

    for name, ok, numbers in verdicts:
        print(f"target: {name:<32} {'PASS' if ok else 'FAIL'}  {numbers}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
