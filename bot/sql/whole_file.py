"""Hazards of a migration as a whole: ALTERs that could be one, a missing lock_timeout, unrelated tables.

The complexity of "major restructuring" groups the changed tables the same way (``table_groups``).
"""

from __future__ import annotations

from bot.sql.catalog import Catalog
from bot.sql.context import FileContext
from bot.sql.model import Code, Hazard, Kind, Level, LockLevel, Operation

M, LO = Level.MEDIUM, Level.LOW


def file_hazards(
    operations: list[Operation],
    existed: list[bool],
    unguarded: Operation | None,
    ctx: FileContext,
    groups: list[list[str]],
) -> list[Hazard]:
    """Hazards of the migration as a whole.

    ``existed`` says, per operation position, whether its table predates the file; ``unguarded`` is the
    first write-blocking operation on an existing (or unknown) table that ran with no lock_timeout set.
    """
    hazards = _merge_alters(operations, existed)
    if unguarded is not None:
        hazards.append(_missing_lock_timeout(unguarded, ctx))
    hazards += _unindexed_foreign_keys(operations, ctx.catalog, ctx.created_indexes)
    hazards += _unrelated_tables(groups)
    return hazards


def _missing_lock_timeout(op: Operation, ctx: FileContext) -> Hazard:
    table = op.table or "its table (unknown: target unreachable)"
    notes = []
    if ctx.ignored_set_local is not None:
        notes.append(
            f"the SET LOCAL lock_timeout of statement {ctx.ignored_set_local.statement_index + 1} stands "
            "outside BEGIN … COMMIT and has no effect"
        )
    runner = ctx.runner_settings.get("lock_timeout")
    if runner:
        notes.append(
            f"when the bot runs this file it sets lock_timeout = '{runner}' itself, so this matters only "
            "when the file is run another way (psql, CI, a framework)"
        )
    return Hazard(
        Code.MISSING_LOCK_TIMEOUT,
        LO if runner else M,
        f'no lock_timeout before "{op.summary}": waiting behind a long query for its {op.lock.value} lock, '
        f"it blocks every query on {table} queued behind it" + "".join(f"; {n}" for n in notes),
        "start the migration with SET lock_timeout = '5s' (and retry on timeout)",
        None,
        op.table,
    )


NEUTRAL_KINDS = {Kind.SET_SETTING, Kind.TRANSACTION}
ALTER_KINDS = {
    Kind.ADD_COLUMN, Kind.DROP_COLUMN, Kind.ALTER_COLUMN_TYPE, Kind.SET_NOT_NULL, Kind.DROP_NOT_NULL,
    Kind.SET_DEFAULT, Kind.DROP_DEFAULT, Kind.ADD_CONSTRAINT, Kind.DROP_CONSTRAINT, Kind.VALIDATE_CONSTRAINT,
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
            Code.MERGE_ALTERS,
            LO,
            f"{count} ALTER TABLE statements in a row on {table}, each taking its own ACCESS EXCLUSIVE lock",
            f"combine them into one ALTER TABLE {table} … , … statement: one lock, one pass",
            None,
            table,
        )
        for table, count in runs
        if table and count > 1
    ]


def _is_foreign_key(op: Operation) -> bool:
    return op.kind is Kind.ADD_CONSTRAINT and op.details.get("constraint_type") == "foreign_key"


def _unindexed_foreign_keys(
    operations: list[Operation], catalog: Catalog, created_indexes: dict[str, list[tuple[str, ...]]]
) -> list[Hazard]:
    hazards = []
    for op in operations:
        if not _is_foreign_key(op) or not op.table:
            continue
        columns = tuple(op.details["columns"])
        existing = catalog.index_column_lists(op.table)
        candidates = list(created_indexes.get(op.table, [])) + list(existing or [])
        if any(ix[: len(columns)] == columns for ix in candidates):
            continue
        unknown = " (the target's existing indexes could not be checked)" if existing is None else ""
        hazards.append(
            Hazard(
                Code.FOREIGN_KEY_UNINDEXED,
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
    Kind.CREATE_TABLE, Kind.CREATE_TABLE_AS, Kind.CREATE_INDEX, Kind.RENAME_COLUMN, Kind.RENAME_TABLE,
    Kind.DROP_TABLE, Kind.TRUNCATE, Kind.UPDATE, Kind.DELETE, Kind.INSERT, Kind.MERGE, Kind.COPY,
    Kind.CREATE_TRIGGER, Kind.DROP_TRIGGER, Kind.ALTER_TABLE, Kind.ATTACH_PARTITION, Kind.DETACH_PARTITION,
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

    links = [(op.table, op.details["references"]) for op in operations if _is_foreign_key(op)]
    links += [(op.table, op.details["partition"]) for op in operations if "partition" in op.details]
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
            Code.UNRELATED_TABLES,
            M,
            f"this migration changes {len(groups)} groups of tables not linked by a foreign key ({listed})",
            "one migration per change: each can then be reviewed, applied and rolled back on its own",
            None,
            None,
        )
    ]
