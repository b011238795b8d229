"""Zero-downtime hazards of one statement: what can block, break, fail or lose data, and the safer way.

``statement_hazards`` judges one operation where it stands in the file; ``bot.sql.whole_file`` judges the
migration as a whole and ``bot.sql.transactions`` its transaction blocks. Nothing is silent: code the
analysis cannot see into, and statement kinds it does not model, are hazards of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.sql.context import FileContext
from bot.sql.model import Code, Hazard, Kind, Level, Operation

H, M, LO = Level.HIGH, Level.MEDIUM, Level.LOW
Rule = Callable[[Operation, FileContext], Iterable[Hazard]]

EXPAND_CONTRACT = (
    "expand and contract: add the new column or table, write to both, backfill in batches, switch reads, "
    "and drop the old one in a later release"
)
CONCURRENT_INDEX = "CREATE INDEX CONCURRENTLY, in its own migration, outside a transaction block"
NOT_VALID_THEN_VALIDATE = (
    "add it NOT VALID (instant, checks new rows only), then VALIDATE CONSTRAINT in a separate transaction "
    "(SHARE UPDATE EXCLUSIVE: reads and writes continue)"
)
BATCHES = "update in batches of a few thousand rows by primary key range, each in its own transaction"
BY_HAND = "review it by hand (or write it as plain SQL statements the analysis can read)"


def _hazard(code: Code, severity: Level, message: str, alternative: str, op: Operation) -> Hazard:
    return Hazard(code, severity, message, alternative, op.statement_index, op.table)


def statement_hazards(op: Operation, ctx: FileContext) -> list[Hazard]:
    """Hazards of one operation, given what the file did before it."""
    rule = _RULES.get(op.kind)
    return list(rule(op, ctx)) if rule else []


def _not_analysed(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    d = op.details
    if op.kind is Kind.DO:
        seen = (
            "its plain SQL statements are analysed below" if d["statements"] else "nothing in it is plain SQL"
        )
        if not d["parsed"]:
            seen = f"its {d['language']} body could not be read"
        dynamic = (
            f"; dynamic SQL (EXECUTE) on line {', '.join(map(str, d['dynamic']))}" if d["dynamic"] else ""
        )
        what = f"{op.summary}: not analysed as a whole ({seen}{dynamic}); conditions, loops and called code"
        yield _hazard(Code.NOT_ANALYSED, H, f"{what} may do anything", BY_HAND, op)
    elif op.kind is Kind.CALL or (op.kind is Kind.SELECT and d["functions"]):
        called = d.get("function") or ", ".join(d["functions"])
        yield _hazard(
            Code.NOT_ANALYSED,
            H,
            f"{op.summary}: not analysed, {called} runs code the analysis cannot see (locks, writes, DDL)",
            BY_HAND,
            op,
        )
    elif op.kind is Kind.OTHER:
        yield _hazard(
            Code.NOT_ANALYSED,
            M,
            f"{op.summary}: a statement kind this analysis does not model; its locks and effects are unknown",
            BY_HAND,
            op,
        )


def _create_index(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if op.details["concurrent"] or not ctx.existed(op.table):
        return
    assert op.table is not None
    large, note = ctx.size_note(op.table)
    yield _hazard(
        Code.INDEX_WITHOUT_CONCURRENTLY,
        H if large else M,
        f"{op.summary} takes a SHARE lock: inserts, updates and deletes on {op.table} wait for the whole "
        f"build ({note})",
        CONCURRENT_INDEX,
        op,
    )


def _drop_index(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not op.details["concurrent"]:
        table = op.table or "its table (unknown: target unreachable)"
        yield _hazard(
            Code.DROP_INDEX_WITHOUT_CONCURRENTLY,
            M,
            f"{op.summary} takes an ACCESS EXCLUSIVE lock on {table}: reads and writes wait",
            "DROP INDEX CONCURRENTLY, outside a transaction block",
            op,
        )


def _add_column(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    d = op.details
    if d["not_null"] and d["default"] == "none" and not d["identity"] and not d["generated"]:
        yield _hazard(
            Code.ADD_COLUMN_NOT_NULL_WITHOUT_DEFAULT,
            H,
            f"{op.summary} NOT NULL without a default fails on a table that has rows",
            "add the column nullable (or with a constant default), backfill in batches, then add NOT NULL "
            "the safe way (CHECK … NOT VALID, VALIDATE, SET NOT NULL)",
            op,
        )
    if op.rewrites_table:
        what = (
            "an identity"
            if d["identity"]
            else "a stored generated value"
            if d["generated"]
            else "a volatile default"
        )
        yield _hazard(
            Code.ADD_COLUMN_VOLATILE_DEFAULT,
            H,
            f"{op.summary} with {what} rewrites every row of {op.table} under an ACCESS EXCLUSIVE lock",
            "add the column without the default, set the default for new rows, backfill old rows in batches",
            op,
        )
    elif d["default"] == "unknown":
        yield _hazard(
            Code.ADD_COLUMN_VOLATILE_DEFAULT,
            M,
            f"{op.summary}: the default calls a function whose volatility is not known here; "
            "if it is volatile, the table is rewritten under an ACCESS EXCLUSIVE lock",
            "use a constant default, or add the column without one and backfill in batches",
            op,
        )
    elif d["default"] == "constant" and ctx.version is not None and ctx.version < 110000:
        yield _hazard(
            Code.ADD_COLUMN_DEFAULT_REWRITE,
            H,
            f"{op.summary} with a default rewrites the whole table on PostgreSQL {ctx.version // 10000} "
            "(fast defaults arrived in 11)",
            "add the column without a default, set the default, then backfill in batches",
            op,
        )


def _set_not_null(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    assert op.table is not None
    col = op.details["column"]
    proven = (op.table, col) in ctx.not_null_checked or op.details.get("proven_by")
    if proven and ctx.version is not None and ctx.version >= 120000:
        return  # PostgreSQL 12+ proves NOT NULL from the valid check and skips the scan
    yield _hazard(
        Code.SET_NOT_NULL,
        M,
        f"{op.summary} scans the whole table under an ACCESS EXCLUSIVE lock",
        f"ADD CONSTRAINT … CHECK ({col} IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT; then SET NOT NULL "
        "(PostgreSQL 12+ uses the valid check and skips the scan); then drop the check",
        op,
    )


def _add_constraint(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    d = op.details
    if not ctx.existed(op.table) or d.get("inline"):
        return
    kind = d["constraint_type"]
    if kind in {"check", "foreign_key"} and not d["not_valid"]:
        lock = "SHARE ROW EXCLUSIVE (writes wait)" if kind == "foreign_key" else "ACCESS EXCLUSIVE"
        where = f" and {d['references']}" if kind == "foreign_key" else ""
        yield _hazard(
            Code.CONSTRAINT_VALIDATION,
            M,
            f"{op.summary} checks every existing row while holding {lock} on {op.table}{where}",
            NOT_VALID_THEN_VALIDATE,
            op,
        )
    if kind in {"unique", "primary_key"} and not d["using_index"]:
        yield _hazard(
            Code.UNIQUE_WITHOUT_INDEX,
            M,
            f"{op.summary} builds its index under an ACCESS EXCLUSIVE lock: reads and writes wait",
            "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX (instant)",
            op,
        )


def _attach_partition(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    partition = op.details["partition"]
    if ctx.existed(partition):
        yield _hazard(
            Code.CONSTRAINT_VALIDATION,
            M,
            f"{op.summary} checks every row of {partition} against the partition bound under an ACCESS "
            f"EXCLUSIVE lock on {partition}"
            + (" (and scans the default partition)" if op.details["default"] else ""),
            f"first add a CHECK constraint matching the bound to {partition} NOT VALID and VALIDATE it: "
            "ATTACH then skips the scan; drop the check afterwards",
            op,
        )


def _rename(code: Code, what: str) -> Rule:
    def rule(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
        if ctx.existed(op.table):
            yield _hazard(
                code,
                H,
                f"{op.summary}: application code still using the old {what} name fails at once",
                EXPAND_CONTRACT,
                op,
            )

    return rule


def _alter_type(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    yield from _dependents(op, "cannot change the type of a column a view uses")
    if not op.rewrites_table:
        yield _hazard(
            Code.CHANGE_COLUMN_TYPE,
            LO,
            f"{op.summary}: from {op.details['from_type']}, binary-compatible (no rewrite); a brief ACCESS "
            "EXCLUSIVE lock, and code that checks the old limit may need a release",
            "keep lock_timeout set; nothing else to change",
            op,
        )
    else:
        yield _hazard(
            Code.CHANGE_COLUMN_TYPE,
            H,
            f"{op.summary}: most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE "
            "lock, and old code may not read the new type",
            "add a column of the new type, write to both, backfill in batches, switch reads, drop the old "
            "column later",
            op,
        )


def _dependents(op: Operation, refusal: str) -> Iterable[Hazard]:
    """Objects that depend on what ``op`` drops or changes: PostgreSQL refuses, or CASCADE drops them."""
    found = op.details.get("dependents") or []
    if op.details.get("cascade"):
        listed = f": {', '.join(found)}" if found else " (none known: target unreachable, or none)"
        yield _hazard(
            Code.DEPENDENT_OBJECTS,
            H,
            f"{op.summary} CASCADE also drops every object that depends on it{listed}",
            "drop the dependent objects by name first, each reviewed; then drop without CASCADE",
            op,
        )
    elif found:
        yield _hazard(
            Code.DEPENDENT_OBJECTS,
            H,
            f"{op.summary} fails: PostgreSQL {refusal} ({', '.join(found)} depend on it)",
            "change or drop the dependent objects first, in the same migration, and recreate them after",
            op,
        )


def _drop(code: Code, what: str) -> Rule:
    def rule(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
        yield from _dependents(op, f"cannot drop a {what} other objects depend on")
        if ctx.existed(op.table):
            yield _hazard(
                code,
                H,
                f"{op.summary}: code still reading the {what} breaks, and its data is gone "
                "(only a backup brings it back)",
                f"first release code that no longer uses the {what}, wait a release, then drop it; "
                "back up the data before",
                op,
            )

    return rule


def _drop_cascade(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    yield from _dependents(op, "cannot drop an object others depend on")


def _data_change(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    assert op.table is not None
    verb = op.kind.value.upper()
    if not op.details["where"]:
        yield _hazard(
            Code.UPDATE_WITHOUT_WHERE if op.kind is Kind.UPDATE else Code.DELETE_WITHOUT_WHERE,
            H,
            f"{verb} without WHERE touches every row of {op.table} in one transaction: long row locks, "
            "table bloat, and no way back but a backup",
            f"add a WHERE clause; {BATCHES}",
            op,
        )
    else:
        _, note = ctx.size_note(op.table)
        yield _hazard(
            Code.DATA_MIGRATION,
            M,
            f"{verb} on {op.table} is a data migration in one transaction ({note}): its row locks are held "
            "until it commits",
            BATCHES,
            op,
        )


def _truncate(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if ctx.existed(op.table):
        also = " and every table with a foreign key to it" if op.details["cascade"] else ""
        yield _hazard(
            Code.TRUNCATE,
            H,
            f"{op.summary} takes an ACCESS EXCLUSIVE lock and removes all rows{also} "
            "(only a backup restores them)",
            "delete what must go in batches with a WHERE clause, after a verified backup",
            op,
        )


def _maintenance(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if op.details.get("concurrent") or not (ctx.existed(op.table) or op.table is None):
        return
    if op.kind is Kind.REINDEX:
        what = f"the table {op.table}" if op.table else "the table"
        held = (
            f"a SHARE lock on {what} (writes wait) and an ACCESS EXCLUSIVE lock on each index it rebuilds "
            "(reads that would use it wait too)"
        )
        alternative = "REINDEX CONCURRENTLY, outside a transaction block"
    else:
        held = f"an ACCESS EXCLUSIVE lock on {op.table or 'each table'} (reads and writes wait)"
        alternative = (
            "REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index)"
            if op.kind is Kind.REFRESH_MATERIALIZED_VIEW
            else "pg_repack, outside the migration"
        )
    yield _hazard(
        Code.TABLE_REWRITE_MAINTENANCE,
        H,
        f"{op.summary} holds {held} for as long as it takes",
        alternative,
        op,
    )


def _alter_table(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if op.rewrites_table and ctx.existed(op.table):
        yield _hazard(
            Code.TABLE_REWRITE,
            H,
            f"{op.summary} {op.details['rewrite']} under an ACCESS EXCLUSIVE lock: reads and writes wait",
            "pg_repack (or a new table filled in batches), outside the migration",
            op,
        )


def _lock_table(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    blocks = op.lock.blocks_writes
    yield _hazard(
        Code.LOCK_TABLE,
        H if blocks else LO,
        f"{op.summary}: {'writes' if blocks else 'only conflicting DDL'} wait until the migration commits",
        "let each statement take the lock it needs, with lock_timeout set",
        op,
    )


_RULES: dict[Kind, Rule] = {
    Kind.DO: _not_analysed,
    Kind.CALL: _not_analysed,
    Kind.SELECT: _not_analysed,
    Kind.OTHER: _not_analysed,
    Kind.CREATE_INDEX: _create_index,
    Kind.DROP_INDEX: _drop_index,
    Kind.ADD_COLUMN: _add_column,
    Kind.SET_NOT_NULL: _set_not_null,
    Kind.ADD_CONSTRAINT: _add_constraint,
    Kind.ATTACH_PARTITION: _attach_partition,
    Kind.RENAME_COLUMN: _rename(Code.RENAME_COLUMN, "column"),
    Kind.RENAME_TABLE: _rename(Code.RENAME_TABLE, "table"),
    Kind.ALTER_COLUMN_TYPE: _alter_type,
    Kind.DROP_COLUMN: _drop(Code.DROP_COLUMN, "column"),
    Kind.DROP_TABLE: _drop(Code.DROP_TABLE, "table"),
    Kind.DROP_CONSTRAINT: _drop_cascade,
    Kind.DROP_VIEW: _drop_cascade,
    Kind.DROP_FUNCTION: _drop_cascade,
    Kind.DROP_OBJECT: _drop_cascade,
    Kind.UPDATE: _data_change,
    Kind.DELETE: _data_change,
    Kind.MERGE: _data_change,
    Kind.TRUNCATE: _truncate,
    Kind.VACUUM_FULL: _maintenance,
    Kind.CLUSTER: _maintenance,
    Kind.REINDEX: _maintenance,
    Kind.REFRESH_MATERIALIZED_VIEW: _maintenance,
    Kind.ALTER_TABLE: _alter_table,
    Kind.LOCK_TABLE: _lock_table,
}
