"""Analyse a migration file: statements, what each does and locks, its hazards, and its complexity.

The single entry point the planner, the CLI and the benchmark call. Per statement the work is constant
(catalog answers are cached), so a file of 10,000 statements costs little more than parsing it.
"""

from __future__ import annotations

from dataclasses import replace

from bot.policy import ComplexityPolicy
from bot.sql.catalog import Catalog
from bot.sql.complexity import operation_reason, restructuring_reason
from bot.sql.context import FileContext
from bot.sql.hazards import file_hazards, statement_hazards, table_groups
from bot.sql.model import Analysis, ComplexityReason, Hazard, Level, Operation, TargetFacts
from bot.sql.operations import OperationMapper
from bot.sql.parse import ParsedStatement, parse_statements
from bot.sql.typechange import rewrites

TRANSACTION_OPEN = {"begin", "start"}
TRANSACTION_CLOSE = {"commit", "rollback", "prepare", "commit_prepared", "rollback_prepared"}


def analyze(sql: str, *, catalog: Catalog, policy: ComplexityPolicy) -> Analysis:
    """The full analysis of ``sql``; raises SqlSyntaxError (with line and column) when it does not parse."""
    return analyze_parsed(parse_statements(sql), catalog=catalog, policy=policy)


def analyze_parsed(parsed: list[ParsedStatement], *, catalog: Catalog, policy: ComplexityPolicy) -> Analysis:
    """The analysis of statements already parsed (the planner parses once for analysis and rollback)."""
    ctx = FileContext(catalog=catalog, policy=policy)
    operations: list[Operation] = []
    hazards: list[Hazard] = []
    existed: list[bool] = []  # per operation: did its table predate the file?
    unguarded: Operation | None = None
    reasons: dict[str, ComplexityReason] = {}  # one per distinct reason text, in order
    for item in parsed:
        for mapped in OperationMapper(item.statement.index).map(item.node):
            op = _with_catalog_facts(mapped, catalog)
            existed.append(ctx.existed(op.table))
            operations.append(op)
            hazards += statement_hazards(op, ctx)
            reason = operation_reason(op, ctx)
            if reason is not None:
                reasons.setdefault(f"{reason.statement_index}:{reason.reason}", reason)
            if (
                unguarded is None
                and op.lock.blocks_writes
                and ctx.existed(op.table)
                and not ctx.lock_timeout_set
            ):
                unguarded = op
            _advance(ctx, op)
    groups = table_groups(operations, catalog)
    hazards += file_hazards(operations, existed, unguarded, ctx, groups)
    whole_file = restructuring_reason(groups, policy)
    all_reasons = list(reasons.values()) + ([whole_file] if whole_file else [])
    return Analysis(
        statements=[p.statement for p in parsed],
        operations=operations,
        hazards=hazards,
        complexity=Level.highest([r.level for r in all_reasons]),
        complexity_reasons=all_reasons,
        target=TargetFacts(
            server_version_num=catalog.server_version_num(),
            source=catalog.source,
            row_estimates=ctx.known_rows(),
        ),
    )


def _with_catalog_facts(op: Operation, catalog: Catalog) -> Operation:
    """What only the target knows: the table a DROP INDEX locks; whether a type change rewrites."""
    if op.kind == "drop_index" and op.table is None:
        return replace(op, table=catalog.index_table(op.details["index"]))
    if op.kind == "alter_column_type" and op.table and not op.details["using"]:
        current = catalog.column(op.table, op.details["column"])
        if current is not None and not rewrites(current.data_type, op.details["type"]):
            return replace(op, rewrites_table=False, details={**op.details, "from_type": current.data_type})
    return op


def _advance(ctx: FileContext, op: Operation) -> None:
    """Update what is true after ``op`` ran."""
    if op.kind == "create_table" and op.table:
        ctx.created.add(op.table)
    elif op.kind == "create_index" and op.table:
        ctx.created_indexes.setdefault(op.table, []).append(tuple(op.details["columns"]))
    elif op.kind == "transaction":
        kind = op.details["transaction"]
        if kind in TRANSACTION_OPEN:
            ctx.in_transaction = True
        elif kind in TRANSACTION_CLOSE:
            ctx.in_transaction = False
    elif op.kind == "add_constraint" and op.details.get("not_null_column") and op.table:
        target = (op.table, op.details["not_null_column"])
        if op.details["constraint"]:
            ctx.not_null_checks[op.details["constraint"]] = target
        if not op.details["not_valid"]:
            ctx.not_null_checked.add(target)
    elif op.kind == "validate_constraint" and op.details["constraint"] in ctx.not_null_checks:
        ctx.not_null_checked.add(ctx.not_null_checks[op.details["constraint"]])
    elif op.kind == "set_setting" and op.details["setting"] == "lock_timeout":
        ctx.lock_timeout_set = op.details["value"] not in {"", "0", "'0'"}
