"""The steps of the procedure, each a function of what it needs, returning its evidence.

A step raises ``StepFailed`` (its message redacted and fit to show) when it did not do what it must;
the runner (``bot.execution.runner``) decides what follows. Nothing here touches the bot's own store or
Slack: steps speak to the target, the client tools and the runbook only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg

from bot.config import BotConfig, EnvironmentConfig
from bot.embedded import client_tool
from bot.execution import ledger
from bot.execution.apply import ApplyResult, Blocker, apply_segments
from bot.execution.backfill import (
    BackfillError,
    BackfillPlan,
    BackfillProgress,
    NotBatchable,
    plan_backfill,
    run_backfill,
)
from bot.execution.backup import backup, restore, restore_check, verify_backup
from bot.execution.connections import wait_for_connections
from bot.execution.errors import StepFailed
from bot.execution.integrity import check_integrity, row_counts, validated_constraints
from bot.execution.pitr import pitr_status
from bot.execution.runbook import run_command
from bot.execution.segments import Segment, from_data
from bot.execution.verify import verify_migration
from bot.sql.model import Analysis, Level
from bot.summary import PlanSummary

# How the bot's own sessions on the target are named (and told apart from the application's).
APPLICATION_NAME = "migrate-bot"
# Operations that only create: a table they name did not exist before (nothing to back up or count).
CREATING = frozenset({"create_table"})


class StepKind(StrEnum):
    BACKUP = "backup"
    VERIFY_BACKUP = "verify_backup"
    MAINTENANCE_ON = "maintenance_on"
    WAIT_FOR_CONNECTIONS = "wait_for_connections"
    APPLY = "apply"
    VERIFY = "verify"
    INTEGRITY_CHECKS = "integrity_checks"
    MAINTENANCE_OFF = "maintenance_off"
    ROLLBACK = "rollback"
    RESTORE = "restore"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    StepKind.BACKUP: "Backup",
    StepKind.VERIFY_BACKUP: "Verify backup",
    StepKind.MAINTENANCE_ON: "Maintenance mode on",
    StepKind.WAIT_FOR_CONNECTIONS: "Wait for connections to close",
    StepKind.APPLY: "Apply the migration",
    StepKind.VERIFY: "Verify the migration",
    StepKind.INTEGRITY_CHECKS: "Data integrity checks",
    StepKind.MAINTENANCE_OFF: "Restore the application",
    StepKind.ROLLBACK: "Roll back",
    StepKind.RESTORE: "Restore from backup",
}


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # running when the bot stopped: never re-run by itself

    @property
    def icon(self) -> str:
        return {"pending": "⬜", "running": "▶️", "done": "✅", "failed": "❌", "interrupted": "⚠️"}[self.value]


class ApplyFailed(StepFailed):
    """Apply stopped on an error; ``committed`` says which statements stay applied (to be undone)."""

    def __init__(self, message: str, committed: tuple[int, ...]) -> None:
        super().__init__(message)
        self.committed = committed


class BackfillStopped(ApplyFailed):
    """A batched UPDATE stopped part-way: its batches so far are committed; a retry resumes after them."""


def procedure_name(config: BotConfig, plan_environment: str, summary: PlanSummary, chosen: str | None) -> str:
    """The procedure a plan runs: the one its run chose, else its environment's, else the proposal."""
    configured = config.environment(plan_environment).procedure
    return chosen or (propose_procedure(summary) if configured == "auto" else configured)


def procedure_steps(config: BotConfig, name: str) -> list[StepKind]:
    return [StepKind(s) for s in config.policy.execution.procedures[name]]


def propose_procedure(summary: PlanSummary) -> str:
    """The guide's choice: zero downtime when nothing blocks the application's writes for long and the
    plan is not High; else the standard procedure, with maintenance mode."""
    return "standard" if summary.blocks_writes or summary.complexity is Level.HIGH else "zero_downtime"


@dataclass
class StepContext:
    """What a step may use: the plan's facts, its environment, and ways to report and to be stopped."""

    plan_id: int
    file_name: str
    sha256: str
    environment: EnvironmentConfig
    config: BotConfig
    dsn: str
    operator: str
    analysis: Analysis
    segments: dict[str, Any]
    earlier: dict[str, dict[str, Any]]  # outputs of the steps already done, by step name
    now: Callable[[], datetime]
    progress: Callable[[str], None]
    lock_wait: Callable[[list[Blocker]], None]
    cancelled: Callable[[], bool]
    attempt: int = 1  # of this step, counting earlier ones that failed or were retried
    committed: tuple[int, ...] = field(default=())  # for a rollback: the statements to undo
    saved: dict[str, Any] = field(default_factory=dict)  # what an earlier attempt of this step kept
    save: Callable[[str, Any], None] = lambda key, value: None  # keep it for the next attempt

    def tool(self, name: str) -> str:
        return client_tool(name, getattr(self.config.tools, name))

    @property
    def existing_tables(self) -> list[str]:
        created = {op.table for op in self.analysis.operations if op.kind in CREATING}
        return [t for t in self.analysis.tables if t not in created]


StepOutput = tuple[dict[str, Any], str]  # evidence (stored), summary (shown)


def run_backup(ctx: StepContext) -> StepOutput:
    policy = ctx.config.policy.execution
    stamp = ctx.now().strftime("%Y%m%dT%H%M%SZ")
    again = f"-{ctx.attempt}" if ctx.attempt > 1 else ""  # a retry within the same second: its own file
    made = backup(
        ctx.dsn,
        Path(ctx.environment.backup_dir) / ctx.environment.name,
        f"plan{ctx.plan_id}-{stamp}{again}",
        pg_dump=ctx.tool("pg_dump"),
        jobs=ctx.environment.backup_jobs,
        timeout=policy.backup_timeout_seconds,
        progress=ctx.progress,
        cancelled=ctx.cancelled,
    )
    pitr = pitr_status(ctx.dsn)
    counts = row_counts(ctx.dsn, ctx.existing_tables)
    output = {
        "path": str(made.path),
        "format": made.format,
        "size_bytes": made.size_bytes,
        "seconds": round(made.duration_seconds, 2),
        "pitr": {"possible": pitr.possible, "evidence": pitr.evidence},
        "rows_before": counts,
    }
    pitr_note = "PITR possible" if pitr.possible else "PITR not possible"
    return output, f"{made.size_bytes / 1e6:.1f} MB ({made.format}) at `{made.path}`; {pitr_note}"


def _backup_path(ctx: StepContext) -> Path:
    done = ctx.earlier.get(StepKind.BACKUP)
    if not done:
        raise StepFailed("no backup of this run to work with: run the backup step first")
    return Path(done["path"])


def run_verify_backup(ctx: StepContext) -> StepOutput:
    path = _backup_path(ctx)
    check = verify_backup(path, pg_restore=ctx.tool("pg_restore"), objects=ctx.existing_tables)
    output: dict[str, Any] = {"entries": check.entries, "found": list(check.found)}
    summary = f"{check.entries} entries listed, {len(check.found)} touched table(s) in it"
    if ctx.environment.restore_check:
        counts = restore_check(
            path,
            ctx.dsn,
            ctx.dsn,
            pg_restore=ctx.tool("pg_restore"),
            tables=ctx.existing_tables,
            timeout=ctx.config.policy.execution.backup_timeout_seconds,
        )
        output["restore_check"] = {table: list(pair) for table, pair in counts.items()}
        summary += "; restored into a scratch database with equal row counts"
    return output, summary


def _runbook(ctx: StepContext, name: str) -> StepOutput:
    argv = ctx.config.runbook.get(name)
    if not argv:
        raise StepFailed(f"runbook.{name} is not configured: the procedure needs the command to run")
    result = run_command(
        argv, timeout=ctx.config.policy.execution.command_timeout_seconds, cancelled=ctx.cancelled
    )
    return {"argv": list(result.argv), "exit_code": result.exit_code, "output": result.output}, (
        f"`{' '.join(result.argv)}` exited 0 in {result.duration_seconds:.1f} s"
    )


def run_maintenance_on(ctx: StepContext) -> StepOutput:
    return _runbook(ctx, "maintenance_on")


def run_maintenance_off(ctx: StepContext) -> StepOutput:
    return _runbook(ctx, "maintenance_off")


def run_wait_for_connections(ctx: StepContext) -> StepOutput:
    had = wait_for_connections(
        ctx.dsn,
        exclude_application=APPLICATION_NAME,
        timeout=ctx.config.policy.execution.connection_drain_timeout_seconds,
        progress=ctx.progress,
        cancelled=ctx.cancelled,
    )
    return {"connected_at_start": had}, f"no other session left ({had} at the start)"


def _apply(
    ctx: StepContext, segments: list[Segment], after: Callable[[psycopg.Connection], None] | None
) -> ApplyResult:
    policy = ctx.config.policy.execution
    return apply_segments(
        ctx.dsn,
        segments,
        lock_timeout=policy.lock_timeout,
        statement_timeout=policy.statement_timeout,
        lock_retries=policy.lock_retries,
        retry_backoff_seconds=policy.lock_retry_backoff_seconds,
        application_name=APPLICATION_NAME,
        progress=ctx.progress,
        on_lock_wait=ctx.lock_wait,
        cancelled=ctx.cancelled,
        after_last_segment=after,
    )


def target_key(name: str) -> int:
    """A 64-bit advisory-lock key for ``name``, the same in every bot."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _timings(result: ApplyResult) -> dict[str, Any]:
    return {
        "committed": list(result.committed),
        "timings": [[index, round(seconds, 4)] for index, seconds in result.timings],
        "lock_retries": result.lock_retries_used,
        "seconds": round(result.duration_seconds, 3),
    }


def run_apply(ctx: StepContext) -> StepOutput:
    """The approved segments in order; a data-migration UPDATE alone in its segment runs in batches."""
    ledger.check_not_applied(ctx.dsn, ctx.sha256)
    segments = from_data(ctx.segments["forward"])
    batched = {i: plan for i, segment in enumerate(segments) if (plan := _batchable(ctx, segment))}
    committed: list[int] = []
    timings: list[list[float]] = []
    retries, seconds, notes = 0, 0.0, []
    for first, last in _chunks(len(segments), batched):
        if first in batched:
            note = _backfill(ctx, first, batched[first], tuple(committed))
            committed += [s.index for s in segments[first].statements]
            notes.append(note)
            if last == len(segments):
                _record(ctx, None)
            continue
        result = _apply(ctx, segments[first:last], _record_in(ctx) if last == len(segments) else None)
        committed += result.committed
        timings += [[index, round(took, 4)] for index, took in result.timings]
        retries, seconds = retries + result.lock_retries_used, seconds + result.duration_seconds
        if result.failure is not None:
            raise ApplyFailed(_failure_text(ctx, result), tuple(committed))
    limit = ctx.config.policy.execution.max_duration_seconds
    slow = f"; over the {limit:g} s the policy allows" if seconds > limit else ""
    summary = (
        f"{len(committed)} statement(s) in {seconds:.2f} s"
        + (f", {retries} lock retr(ies)" if retries else "")
        + "".join(f"; {n}" for n in notes)
        + slow
    )
    return {
        "committed": committed,
        "timings": timings,
        "lock_retries": retries,
        "seconds": round(seconds, 3),
    }, summary


def _record_in(ctx: StepContext) -> Callable[[psycopg.Connection], None]:
    """The ledger row, written in the migration's last transaction, so both commit or neither."""
    return lambda conn: _record(ctx, conn)


def _record(ctx: StepContext, conn: psycopg.Connection | None) -> None:
    ledger.record_applied(
        conn if conn is not None else ctx.dsn,
        file_name=ctx.file_name,
        sha256=ctx.sha256,
        plan_id=ctx.plan_id,
        environment=ctx.environment.name,
        operator=ctx.operator,
    )


def _failure_text(ctx: StepContext, result: ApplyResult) -> str:
    failure = result.failure
    assert failure is not None
    where = f" at L{ctx.analysis.statements[failure.statement].line}" if failure.statement is not None else ""
    code = f" ({failure.sqlstate})" if failure.sqlstate else ""
    return f"{failure.message}{code}{where}"


def _chunks(count: int, batched: dict[int, BackfillPlan]) -> list[tuple[int, int]]:
    """Ranges of segments applied together, each batched segment a range of its own."""
    chunks, start = [], 0
    for index in sorted(batched):
        if start < index:
            chunks.append((start, index))
        chunks.append((index, index + 1))
        start = index + 1
    if start < count:
        chunks.append((start, count))
    return chunks


def _batchable(ctx: StepContext, segment: Segment) -> BackfillPlan | None:
    """A transactional segment whose only statement besides settings is an UPDATE the target can batch."""
    kinds = {op.statement_index: op.kind for op in ctx.analysis.operations}
    updates = [s for s in segment.statements if kinds.get(s.index) == "update"]
    others = [s for s in segment.statements if kinds.get(s.index) not in {"update", "set_setting"}]
    if not segment.transactional or len(updates) != 1 or others:
        return None
    plan = plan_backfill(updates[0].sql, ctx.dsn)
    if isinstance(plan, NotBatchable):
        ctx.progress(f"the UPDATE at L{updates[0].line} runs as one statement: {plan.reason}")
        return None
    return plan


def _backfill(ctx: StepContext, index: int, plan: BackfillPlan, committed: tuple[int, ...]) -> str:
    policy = ctx.config.policy.execution.backfill
    key = f"backfill:{index}"

    def progress(p: BackfillProgress) -> None:
        left = f", {p.seconds_left:.0f} s left" if p.seconds_left is not None else ""
        ctx.progress(f"{p.rows_done:,} of ~{p.rows_total:,} rows, {p.rows_per_second:,.0f} rows/s{left}")

    try:
        result = run_backfill(
            ctx.dsn,
            plan,
            batch_rows=policy.batch_rows,
            pause_seconds=policy.pause_seconds,
            max_lock_seconds=policy.max_lock_seconds,
            lock_key=target_key(f"backfill {ctx.plan_id} {index}"),
            resume_after=ctx.saved.get(key),
            progress=progress,
            checkpoint=lambda last: ctx.save(key, last if isinstance(last, int | str) else str(last)),
            cancelled=ctx.cancelled,
        )
    except BackfillError as err:
        raise BackfillStopped(f"the batched UPDATE of {plan.table} stopped: {err}", committed) from None
    if result.cancelled:
        raise BackfillStopped(
            f"the batched UPDATE of {plan.table} stopped after {result.batches} batch(es)", committed
        )
    return (
        f"{result.rows_updated:,} rows of {plan.table} in {result.batches} batch(es), "
        f"locks held at most {result.longest_lock_seconds:.2f} s"
    )


def run_verify(ctx: StepContext) -> StepOutput:
    checks = verify_migration(ctx.dsn, ctx.analysis.operations)
    failed = [c for c in checks if c.failed]
    output = {
        "checks": [{"subject": c.subject, "outcome": c.outcome.value, "sentence": c.sentence} for c in checks]
    }
    if failed:
        raise StepFailed("; ".join(c.sentence for c in failed[:5]))
    return output, f"{len(checks)} check(s) passed"


def run_integrity_checks(ctx: StepContext) -> StepOutput:
    checks = check_integrity(
        ctx.dsn,
        validated=validated_constraints(ctx.analysis.operations),
        progress=ctx.progress,
        cancelled=ctx.cancelled,
    )
    before = ctx.earlier.get(StepKind.BACKUP, {}).get("rows_before", {})
    after = row_counts(ctx.dsn, list(before))
    output = {
        "checks": [
            {"subject": c.subject, "outcome": c.outcome.value, "sentence": c.sentence} for c in checks
        ],
        "rows": {table: [before[table], after[table]] for table in before},
    }
    failed = [c for c in checks if c.failed]
    if failed:
        raise StepFailed("; ".join(c.sentence for c in failed[:5]))
    changed = sum(1 for table in before if before[table] != after[table])
    return (
        output,
        f"{len(checks)} check(s) passed; row counts of {len(before)} table(s) read, {changed} changed",
    )


def run_rollback(ctx: StepContext) -> StepOutput:
    """Undo exactly what was committed: a generated rollback's statements that reverse a committed
    statement (and those reversing none, like its settings); a hand-written one whole."""
    segments = from_data(ctx.segments["rollback"])
    knows = any(s.undoes is not None for seg in segments for s in seg.statements)
    if knows:
        committed = set(ctx.committed)
        segments = [
            Segment(seg.transactional, kept)
            for seg in segments
            if (kept := tuple(s for s in seg.statements if s.undoes is None or s.undoes in committed))
            and any(s.undoes is not None for s in kept)
        ]

    def record(conn: psycopg.Connection) -> None:
        ledger.record_rolled_back(conn, ctx.sha256)

    result = _apply(ctx, segments, record)
    if result.failure is not None:
        raise StepFailed(f"the rollback failed: {result.failure.message}")
    return _timings(
        result
    ), f"{len(result.committed)} rollback statement(s) in {result.duration_seconds:.2f} s"


def run_restore(ctx: StepContext) -> StepOutput:
    path = _backup_path(ctx)
    done = restore(
        path,
        ctx.dsn,
        pg_restore=ctx.tool("pg_restore"),
        jobs=ctx.environment.backup_jobs,
        timeout=ctx.config.policy.execution.backup_timeout_seconds,
        cancelled=ctx.cancelled,
    )
    return {"path": str(path), "seconds": round(done.duration_seconds, 2)}, f"restored `{path}`"


RUN: dict[StepKind, Callable[[StepContext], StepOutput]] = {
    StepKind.BACKUP: run_backup,
    StepKind.VERIFY_BACKUP: run_verify_backup,
    StepKind.MAINTENANCE_ON: run_maintenance_on,
    StepKind.WAIT_FOR_CONNECTIONS: run_wait_for_connections,
    StepKind.APPLY: run_apply,
    StepKind.VERIFY: run_verify,
    StepKind.INTEGRITY_CHECKS: run_integrity_checks,
    StepKind.MAINTENANCE_OFF: run_maintenance_off,
    StepKind.ROLLBACK: run_rollback,
    StepKind.RESTORE: run_restore,
}
