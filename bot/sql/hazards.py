"""Zero-downtime hazards: what in a migration can block, break or lose data, and the guide's safer way.

``statement_hazards`` judges one operation where it stands in the file; ``file_hazards`` judges the
migration as a whole (ALTERs that could be merged, a missing lock_timeout, unrelated tables).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.sql.catalog import Catalog
from bot.sql.context import FileContext
from bot.sql.model import Hazard, Level, LockLevel, Operation

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


def _hazard(code: str, severity: Level, message: str, alternative: str, op: Operation) -> Hazard:
    return Hazard(code, severity, message, alternative, op.statement_index, op.table)


def statement_hazards(op: Operation, ctx: FileContext) -> list[Hazard]:
    """Hazards of one operation, given what the file did before it."""
    rule = _RULES.get(op.kind)
    hazards = list(rule(op, ctx)) if rule else []
    if not op.transactional and ctx.in_transaction and op.kind in {"create_index", "drop_index", "reindex"}:
        hazards.append(
            _hazard(
                "concurrently_in_transaction",
                H,
                f"{op.summary} inside BEGIN … COMMIT: PostgreSQL refuses it "
                '("cannot run inside a transaction block") and the migration fails',
                "move the CONCURRENTLY statement out of the transaction block, into its own migration",
                op,
            )
        )
    return hazards


def _create_index(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if op.details["concurrent"] or not ctx.existed(op.table):
        return
    assert op.table is not None
    large, note = ctx.size_note(op.table)
    yield _hazard(
        "index_without_concurrently",
        H if large else M,
        f"{op.summary} takes a SHARE lock: inserts, updates and deletes on {op.table} wait for the whole "
        f"build ({note})",
        CONCURRENT_INDEX,
        op,
    )


def _drop_index(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not op.details["concurrent"]:
        yield _hazard(
            "drop_index_without_concurrently",
            M,
            f"{op.summary} takes an ACCESS EXCLUSIVE lock on its table: reads and writes wait",
            "DROP INDEX CONCURRENTLY, outside a transaction block",
            op,
        )


def _add_column(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    d = op.details
    if d["not_null"] and d["default"] == "none" and not d["identity"]:
        yield _hazard(
            "add_column_not_null_without_default",
            H,
            f"{op.summary} NOT NULL without a default fails on a table that has rows",
            "add the column nullable (or with a constant default), backfill in batches, then add NOT NULL "
            "the safe way (CHECK … NOT VALID, VALIDATE, SET NOT NULL)",
            op,
        )
    if d["default"] == "volatile" or d["identity"] or d["generated"]:
        what = "an identity" if d["identity"] else "a generated" if d["generated"] else "a volatile default"
        yield _hazard(
            "add_column_volatile_default",
            H,
            f"{op.summary} with {what} rewrites every row of {op.table} under an ACCESS EXCLUSIVE lock",
            "add the column without the default, set the default for new rows, backfill old rows in batches",
            op,
        )
    elif d["default"] in {"constant", "unknown"}:
        version = ctx.catalog.server_version_num()
        if d["default"] == "unknown":
            yield _hazard(
                "add_column_volatile_default",
                M,
                f"{op.summary}: the default calls a function whose volatility is not known here; "
                "if it is volatile, the table is rewritten under an ACCESS EXCLUSIVE lock",
                "use a constant default, or add the column without one and backfill in batches",
                op,
            )
        elif version is None:
            yield _hazard(
                "add_column_default_version_unknown",
                M,
                f"{op.summary} with a default: on PostgreSQL 10 or older this rewrites the table under an "
                "ACCESS EXCLUSIVE lock, and the target's version is unknown (unreachable, none configured)",
                "configure server_version_num for this environment, or add the column without a default "
                "and backfill in batches",
                op,
            )
        elif version < 110000:
            yield _hazard(
                "add_column_default_rewrite",
                H,
                f"{op.summary} with a default rewrites the whole table on PostgreSQL {version // 10000} "
                "(fast defaults arrived in 11)",
                "add the column without a default, set the default, then backfill in batches",
                op,
            )


def _set_not_null(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    assert op.table is not None
    col = op.details["column"]
    version = ctx.catalog.server_version_num()
    if (op.table, col) in ctx.not_null_checked and version is not None and version >= 120000:
        return  # PostgreSQL 12+ proves NOT NULL from the valid check and skips the scan
    yield _hazard(
        "set_not_null",
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
            "constraint_validation",
            M,
            f"{op.summary} checks every existing row while holding {lock} on {op.table}{where}",
            NOT_VALID_THEN_VALIDATE,
            op,
        )
    if kind in {"unique", "primary_key"} and not d["using_index"]:
        yield _hazard(
            "unique_without_index",
            M,
            f"{op.summary} builds its index under an ACCESS EXCLUSIVE lock: reads and writes wait",
            "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX (instant)",
            op,
        )


def _rename(code: str, what: str) -> Rule:
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
    if ctx.existed(op.table) and not op.rewrites_table:
        yield _hazard(
            "change_column_type",
            LO,
            f"{op.summary}: from {op.details['from_type']}, binary-compatible (no rewrite); a brief ACCESS "
            "EXCLUSIVE lock, and code that checks the old limit may need a release",
            "keep lock_timeout set; nothing else to change",
            op,
        )
    elif ctx.existed(op.table):
        yield _hazard(
            "change_column_type",
            H,
            f"{op.summary}: most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE "
            "lock, and old code may not read the new type",
            "add a column of the new type, write to both, backfill in batches, switch reads, drop the old "
            "column later",
            op,
        )


def _drop(code: str, what: str) -> Rule:
    def rule(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
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


def _data_change(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if not ctx.existed(op.table):
        return
    assert op.table is not None
    verb = "UPDATE" if op.kind == "update" else "DELETE"
    if not op.details["where"]:
        yield _hazard(
            f"{op.kind}_without_where",
            H,
            f"{verb} without WHERE touches every row of {op.table} in one transaction: long row locks, "
            "table bloat, and no way back but a backup",
            f"add a WHERE clause; {BATCHES}",
            op,
        )
    else:
        _, note = ctx.size_note(op.table)
        yield _hazard(
            "data_migration",
            M,
            f"{verb} on {op.table} is a data migration in one transaction ({note}): its row locks are held "
            "until it commits",
            BATCHES,
            op,
        )


def _truncate(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if ctx.existed(op.table):
        yield _hazard(
            "truncate",
            H,
            f"{op.summary} takes an ACCESS EXCLUSIVE lock and removes all rows (only a backup restores them)",
            "delete what must go in batches with a WHERE clause, after a verified backup",
            op,
        )


def _maintenance(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    if op.kind == "reindex" and op.details["concurrent"]:
        return
    if op.kind == "reindex" or ctx.existed(op.table) or op.table is None:
        lock = (
            "a SHARE lock (writes wait)" if op.kind == "reindex" else "an ACCESS EXCLUSIVE lock (reads wait)"
        )
        yield _hazard(
            "table_rewrite_maintenance",
            H,
            f"{op.summary} holds {lock} for as long as it takes",
            "REINDEX CONCURRENTLY, or pg_repack for VACUUM FULL / CLUSTER, outside the migration",
            op,
        )


def _lock_table(op: Operation, ctx: FileContext) -> Iterable[Hazard]:
    blocks = op.lock.blocks_writes
    yield _hazard(
        "lock_table",
        H if blocks else LO,
        f"{op.summary}: {'writes' if blocks else 'only conflicting DDL'} wait until the migration commits",
        "let each statement take the lock it needs, with lock_timeout set",
        op,
    )


_RULES: dict[str, Rule] = {
    "create_index": _create_index,
    "drop_index": _drop_index,
    "add_column": _add_column,
    "set_not_null": _set_not_null,
    "add_constraint": _add_constraint,
    "rename_column": _rename("rename_column", "column"),
    "rename_table": _rename("rename_table", "table"),
    "alter_column_type": _alter_type,
    "drop_column": _drop("drop_column", "column"),
    "drop_table": _drop("drop_table", "table"),
    "update": _data_change,
    "delete": _data_change,
    "truncate": _truncate,
    "vacuum_full": _maintenance,
    "cluster": _maintenance,
    "reindex": _maintenance,
    "lock_table": _lock_table,
}


def file_hazards(
    operations: list[Operation],
    existed: list[bool],
    unguarded: Operation | None,
    ctx: FileContext,
    groups: list[list[str]],
) -> list[Hazard]:
    """Hazards of the migration as a whole.

    ``existed`` says, per operation position, whether its table predates the file; ``unguarded`` is the
    first write-blocking operation on an existing table that ran with no lock_timeout set.
    """
    hazards = _merge_alters(operations, existed)
    if unguarded is not None:
        hazards.append(
            Hazard(
                "missing_lock_timeout",
                M,
                f'no lock_timeout before "{unguarded.summary}": waiting behind a long query for its '
                f"{unguarded.lock.value} lock, it blocks every query on {unguarded.table} queued behind it",
                "start the migration with SET lock_timeout = '5s' (and retry on timeout)",
                None,
                unguarded.table,
            )
        )
    hazards += _unindexed_foreign_keys(operations, ctx.catalog, ctx.created_indexes)
    hazards += _unrelated_tables(groups)
    return hazards


NEUTRAL_KINDS = {"set_setting", "transaction"}
ALTER_KINDS = {
    "add_column", "drop_column", "alter_column_type", "set_not_null", "drop_not_null", "set_default",
    "drop_default", "add_constraint", "drop_constraint", "validate_constraint",
}  # fmt: skip


def _merge_alters(operations: list[Operation], existed: list[bool]) -> list[Hazard]:
    """Runs of back-to-back ALTER TABLE statements on one table, each taking its own ACCESS EXCLUSIVE lock."""
    by_statement: dict[int, list[int]] = {}
    for pos, op in enumerate(operations):
        by_statement.setdefault(op.statement_index, []).append(pos)
    runs: list[tuple[str, int]] = []  # (table, statements in the run)
    for positions in by_statement.values():
        ops = [operations[p] for p in positions]
        if all(op.kind in NEUTRAL_KINDS for op in ops):
            continue  # SET and BEGIN do not separate two ALTERs
        tables = {op.table for op in ops}
        mergeable = (
            len(tables) == 1
            and all(op.kind in ALTER_KINDS and op.lock is LockLevel.ACCESS_EXCLUSIVE for op in ops)
            and all(existed[p] for p in positions)
        )
        table = ops[0].table if mergeable else None
        if table is not None and runs and runs[-1][0] == table:
            runs[-1] = (table, runs[-1][1] + 1)
        else:
            runs.append((table or "", 1))
    return [
        Hazard(
            "merge_alters",
            LO,
            f"{count} ALTER TABLE statements in a row on {table}, each taking its own ACCESS EXCLUSIVE lock",
            f"combine them into one ALTER TABLE {table} … , … statement: one lock, one pass",
            None,
            table,
        )
        for table, count in runs
        if table and count > 1
    ]


def _unindexed_foreign_keys(
    operations: list[Operation], catalog: Catalog, created_indexes: dict[str, list[tuple[str, ...]]]
) -> list[Hazard]:
    hazards = []
    for op in operations:
        if op.kind != "add_constraint" or op.details.get("constraint_type") != "foreign_key" or not op.table:
            continue
        columns = tuple(op.details["columns"])
        existing = catalog.index_column_lists(op.table)
        candidates = list(created_indexes.get(op.table, [])) + list(existing or [])
        if any(ix[: len(columns)] == columns for ix in candidates):
            continue
        unknown = " (the target's existing indexes could not be checked)" if existing is None else ""
        hazards.append(
            Hazard(
                "foreign_key_unindexed",
                LO,
                f"no index on {op.table} ({', '.join(columns)}) for its foreign key "
                f"to {op.details['references']}"
                f"{unknown}: deletes and updates on {op.details['references']} scan {op.table}",
                f"CREATE INDEX CONCURRENTLY ON {op.table} ({', '.join(columns)})",
                op.statement_index,
                op.table,
            )
        )
    return hazards


CHANGE_KINDS = ALTER_KINDS | {
    "create_table", "create_index", "rename_column", "rename_table", "drop_table", "truncate", "update",
    "delete", "insert", "create_trigger", "drop_trigger",
}  # fmt: skip


def changed_tables(operations: list[Operation]) -> list[str]:
    return list(dict.fromkeys(op.table for op in operations if op.table and op.kind in CHANGE_KINDS))


def table_groups(operations: list[Operation], catalog: Catalog) -> list[list[str]]:
    """The changed tables, grouped by foreign keys (declared in the file or found in the catalog)."""
    tables = changed_tables(operations)
    parent = {t: t for t in tables}

    def find(t: str) -> str:
        while parent[t] != t:
            t = parent[t]
        return t

    links = [
        (op.table, op.details["references"])
        for op in operations
        if op.kind == "add_constraint" and op.details.get("constraint_type") == "foreign_key"
    ]
    if len(tables) > 1:
        for table in tables:
            links += [(table, other) for other in catalog.foreign_key_links(table) or ()]
    for a, b in links:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for t in tables:
        groups.setdefault(find(t), []).append(t)
    return list(groups.values())


def _unrelated_tables(groups: list[list[str]]) -> list[Hazard]:
    if len(groups) < 2:
        return []
    listed = "; ".join(", ".join(g) for g in groups)
    return [
        Hazard(
            "unrelated_tables",
            M,
            f"this migration changes {len(groups)} groups of tables not linked by a foreign key ({listed})",
            "one migration per change: each can then be reviewed, applied and rolled back on its own",
            None,
            None,
        )
    ]
