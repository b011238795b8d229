"""Analyse a migration file: statements, what each does and locks, its hazards, and its complexity.

The single entry point the planner, the CLI and the benchmark call. Per statement the work is constant
(catalog answers are cached), so a file of 10,000 statements costs little more than parsing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from pglast import parse_sql
from pglast.parser import ParseError

from bot.rules import ComplexityPolicy
from bot.sql.catalog import Catalog
from bot.sql.complexity import operation_reason, restructuring_reason
from bot.sql.context import FileContext
from bot.sql.facts import with_catalog_facts
from bot.sql.hazards import statement_hazards
from bot.sql.model import (
    Analysis,
    ComplexityReason,
    Hazard,
    Kind,
    Level,
    LockLevel,
    Operation,
    Statement,
    TargetFacts,
)
from bot.sql.nodes import given
from bot.sql.operations import OperationMapper
from bot.sql.parse import ParsedStatement, parse_statements
from bot.sql.transactions import advance, enum_value_hazards, left_open, transaction_hazards
from bot.sql.whole_file import file_hazards, table_groups

CREATING = (Kind.CREATE_TABLE, Kind.CREATE_TABLE_AS)


def analyze(
    sql: str, *, catalog: Catalog, policy: ComplexityPolicy, runner_settings: Mapping[str, str] | None = None
) -> Analysis:
    """The full analysis of ``sql``; raises SqlSyntaxError (with line and column) when it does not parse."""
    return analyze_parsed(
        parse_statements(sql), catalog=catalog, policy=policy, runner_settings=runner_settings
    )


@dataclass
class _Findings:
    """Hazards and complexity reasons gathered over a file."""

    hazards: list[Hazard] = field(default_factory=list)
    # one per statement and distinct text, in order
    reasons: dict[tuple[int | None, str], ComplexityReason] = field(default_factory=dict)
    unguarded: Operation | None = None  # the first write-blocking lock taken with no lock_timeout


def analyze_parsed(
    parsed: Iterable[ParsedStatement],
    *,
    catalog: Catalog,
    policy: ComplexityPolicy,
    runner_settings: Mapping[str, str] | None = None,
) -> Analysis:
    """The analysis of statements already parsed (the planner parses once for analysis and rollback), read
    once, in order: each one's parse tree may go as soon as the next is read.

    ``runner_settings`` are the settings the bot's runner applies itself (``lock_timeout`` …), so that a
    hazard about a missing one can say whether it matters when the bot runs the file.
    """
    ctx = FileContext(catalog=catalog, policy=policy, runner_settings=dict(runner_settings or {}))
    found = _Findings()
    statements: list[Statement] = []
    operations: list[Operation] = []
    existed: list[bool] = []  # per operation: did its table predate the file?
    for item in parsed:
        statements.append(item.statement)
        found.hazards += enum_value_hazards(item.node, item.statement.index, ctx)
        for mapped in item.operations:
            op = with_catalog_facts(mapped, ctx)
            existed.append(ctx.existed(op.table))
            _judge(op, ctx, found)
            if op.kind is Kind.DO:
                op = _look_inside(op, ctx, found)
            operations.append(op)
    found.hazards += left_open(ctx)
    groups = table_groups(operations, catalog)
    found.hazards += file_hazards(operations, existed, found.unguarded, ctx, groups)
    whole_file = restructuring_reason(groups, policy)
    all_reasons = list(found.reasons.values()) + ([whole_file] if whole_file else [])
    return Analysis(
        statements=statements,
        operations=operations,
        hazards=found.hazards,
        complexity=Level.highest([r.level for r in all_reasons]),
        complexity_reasons=all_reasons,
        target=TargetFacts(
            server_version_num=catalog.server_version_num(),
            source=catalog.source,
            row_estimates=ctx.known_rows(),
            assumed_version_num=ctx.version if ctx.assumed else None,
            runner_settings=ctx.runner_settings,
        ),
    )


def _judge(op: Operation, ctx: FileContext, found: _Findings, where: str = "") -> None:
    """Hazards and complexity of ``op`` where it stands, then what it changes; ``where`` prefixes texts."""
    hazards = transaction_hazards(op, ctx) + statement_hazards(op, ctx)
    found.hazards += [replace(h, message=where + h.message) for h in hazards] if where else hazards
    reason = operation_reason(op, ctx)
    if reason is not None:
        reason = replace(reason, reason=where + reason.reason) if where else reason
        found.reasons.setdefault((reason.statement_index, reason.reason), reason)
    unknown_table = op.table is None and op.details.get("index") is not None and ctx.catalog.source != "live"
    if (
        found.unguarded is None
        and op.lock.blocks_writes
        and op.kind not in CREATING
        and (ctx.existed(op.table) or unknown_table)
        and not ctx.lock_timeout_set
    ):
        found.unguarded = op
    _advance(ctx, op)
    advance(op, ctx)


def _look_inside(op: Operation, ctx: FileContext, found: _Findings) -> Operation:
    """The plain SQL a DO block runs, judged like the file's own statements; its locks become the block's."""
    locks: dict[str, LockLevel] = {}
    for line, sql in op.details["statements"]:
        try:
            raws = parse_sql(sql)
        except ParseError:
            continue  # PL/pgSQL syntax pglast reads only in context (a variable as a type …)
        for raw in raws:
            statement = Statement(op.statement_index, sql, line, line)
            for inner in OperationMapper(statement).map(given(raw.stmt)):
                inner = with_catalog_facts(inner, ctx)
                _judge(inner, ctx, found, where=f"in the DO block, line {line}: ")
                for table, lock in inner.locks.items():
                    locks[table] = LockLevel.strongest([lock, locks.get(table, LockLevel.NONE)])
    return replace(op, other_locks=locks)


def _advance(ctx: FileContext, op: Operation) -> None:
    """Update what is true after ``op`` ran."""
    d = op.details
    if op.kind in CREATING and op.table:
        ctx.created.add(op.table)
    elif op.kind is Kind.CREATE_INDEX and op.table:
        ctx.created_indexes.setdefault(op.table, []).append(tuple(d["columns"]))
    elif op.kind is Kind.ADD_CONSTRAINT and op.table:
        if d["constraint_type"] == "foreign_key" and d["constraint"]:
            ctx.foreign_keys[d["constraint"]] = d["references"]
        if d.get("not_null_column"):
            target = (op.table, d["not_null_column"])
            if d["constraint"]:
                ctx.not_null_checks[d["constraint"]] = target
            if not d["not_valid"]:
                ctx.not_null_checked.add(target)
    elif op.kind is Kind.VALIDATE_CONSTRAINT and d["constraint"] in ctx.not_null_checks:
        ctx.not_null_checked.add(ctx.not_null_checks[d["constraint"]])
