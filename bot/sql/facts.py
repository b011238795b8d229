"""What only the target knows, added to an operation: the table of an index, the views on a column,
the foreign keys a dropped constraint or table held, whether a type change rewrites.

Offline every answer is "unknown" and the operation stays as the SQL says.
"""

from __future__ import annotations

from dataclasses import replace

from bot.sql.context import FileContext
from bot.sql.model import Kind, LockLevel, Operation
from bot.sql.typechange import rewrites


def with_catalog_facts(op: Operation, ctx: FileContext) -> Operation:
    catalog, d = ctx.catalog, op.details
    if op.kind is Kind.DROP_INDEX or (op.kind is Kind.REINDEX and d["index"]):
        return replace(op, table=catalog.index_table(d["index"]))
    if op.table is None or not ctx.existed(op.table):
        return op  # created in this file: the target knows nothing of it yet
    if op.kind is Kind.ALTER_COLUMN_TYPE:
        facts = {**d, "dependents": catalog.dependents(op.table, d["column"])}
        current = catalog.column(op.table, d["column"])
        if current is not None:
            facts["from_type"] = current.data_type
        if current is not None and not d["using"] and not rewrites(current.data_type, d["type"]):
            return replace(op, rewrites_table=False, details=facts)
        return replace(op, details=facts)
    if op.kind is Kind.DROP_COLUMN:
        return replace(op, details={**d, "dependents": catalog.dependents(op.table, d["column"])})
    if op.kind is Kind.DROP_TABLE:
        # dropping a table drops its foreign keys, which takes ACCESS EXCLUSIVE on the tables they reference
        referenced = {t for t in (catalog.foreign_keys(op.table) or {}).values() if t != op.table}
        return replace(
            op,
            details={**d, "dependents": catalog.dependents(op.table)},
            other_locks={**op.other_locks, **dict.fromkeys(sorted(referenced), LockLevel.ACCESS_EXCLUSIVE)},
        )
    if op.kind in (Kind.DROP_CONSTRAINT, Kind.VALIDATE_CONSTRAINT):
        name = d["constraint"]
        parent = ctx.foreign_keys.get(name) or (catalog.foreign_keys(op.table) or {}).get(name)
        if parent is None or parent == op.table:
            return op
        lock = LockLevel.ACCESS_EXCLUSIVE if op.kind is Kind.DROP_CONSTRAINT else LockLevel.ROW_SHARE
        return replace(op, other_locks={**op.other_locks, parent: lock})
    if op.kind is Kind.SET_NOT_NULL:
        check = (catalog.not_null_checks(op.table) or {}).get(d["column"])
        return replace(op, details={**d, "proven_by": check}) if check else op
    return op
