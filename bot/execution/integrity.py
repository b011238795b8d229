"""The guide's data integrity checks, over the target's real schema rather than a hand-written list.

Every foreign key is checked for orphaned rows (``NOT EXISTS`` against the referenced table, the way
PostgreSQL's own check reads it: rows with a NULL key column are not checked); every constraint still NOT
VALID and every invalid index (a failed ``CREATE INDEX CONCURRENTLY``) is listed. Each query runs under
a statement timeout in a read-only session: on a live server a check must never become the outage.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

import psycopg
from psycopg import sql

from bot.execution.checks import Check, Outcome
from bot.execution.errors import StepCancelled
from bot.execution.target import connected, scalar
from bot.sql.fingerprint import USER_SCHEMAS
from bot.sql.model import Operation

INVALID_HELP = "queries do not use it; drop it (DROP INDEX CONCURRENTLY) and build it again"
FOREIGN_KEYS = f"""
WITH s AS ({USER_SCHEMAS})
SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
       cn.nspname, cr.relname, cr.relkind = 'r', fn.nspname, fr.relname, fr.relkind = 'r',
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord)
FROM pg_constraint c
JOIN pg_class cr ON cr.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cr.relnamespace
JOIN pg_class fr ON fr.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = fr.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0 AND c.connamespace IN (SELECT oid FROM s)
ORDER BY 2, 1
"""
NOT_VALID = f"""
WITH s AS ({USER_SCHEMAS})
SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
WHERE NOT convalidated AND connamespace IN (SELECT oid FROM s) ORDER BY 2, 1
"""
INVALID_INDEXES = f"""
WITH s AS ({USER_SCHEMAS})
SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE NOT i.indisvalid AND c.relnamespace IN (SELECT oid FROM s)
  AND (%(tables)s::regclass[] IS NULL OR i.indrelid = ANY(%(tables)s::regclass[]))
ORDER BY 2, 1
"""


def row_counts(dsn: str, tables: Sequence[str], *, statement_timeout: str = "5min") -> dict[str, int | None]:
    """The exact number of rows (``count(*)``) of each table, None for a table that does not exist."""
    counts: dict[str, int | None] = {}
    with connected(dsn) as conn:
        _read_only(conn, statement_timeout)
        for table in tables:
            row = conn.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = to_regclass(%s)",
                (table,),
            ).fetchone()
            if row is None:
                counts[table] = None
                continue
            counts[table] = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*row)))
    return counts


def validated_constraints(operations: Sequence[Operation]) -> set[str]:
    """Names of the constraints a migration validates (added without NOT VALID, or VALIDATEd)."""
    return {
        op.details["constraint"]
        for op in operations
        if op.details.get("constraint")
        and (
            op.kind == "validate_constraint"
            or (op.kind == "add_constraint" and not op.details.get("not_valid"))
        )
    }


def check_integrity(
    dsn: str,
    *,
    validated: Collection[str] = (),
    schemas: Sequence[str] | None = None,
    statement_timeout: str = "60s",
    progress: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[Check]:
    """Orphans of every foreign key, constraints still NOT VALID, invalid indexes, in the user schemas
    (or just ``schemas``).

    Failures: orphaned rows, an invalid index, a constraint named in ``validated`` still NOT VALID. A
    foreign key whose count runs past ``statement_timeout`` is NOT_CHECKED. Raises StepCancelled.
    """
    params = {"schemas": list(schemas) if schemas is not None else None}
    with connected(dsn) as conn:
        _read_only(conn, statement_timeout)
        foreign_keys = [ForeignKey._make(row) for row in conn.execute(FOREIGN_KEYS, params).fetchall()]
        checks = []
        for number, fk in enumerate(foreign_keys, 1):
            if cancelled and cancelled():
                raise StepCancelled(f"integrity check cancelled after {number - 1} foreign keys")
            checks.append(_orphans(conn, fk, statement_timeout))
            if progress:
                progress(f"orphaned rows counted for {number}/{len(foreign_keys)} foreign keys")
        checks += [
            _not_valid(name, table, definition, name in validated)
            for name, table, definition in conn.execute(NOT_VALID, params).fetchall()
        ]
        checks += [
            Check(
                "index_valid", index, Outcome.FAILED, f"index {index} on {table} is INVALID: {INVALID_HELP}"
            )
            for index, table in invalid_indexes(conn, schemas=schemas)
        ]
    return checks


def invalid_indexes(
    conn: psycopg.Connection, *, schemas: Sequence[str] | None = None, tables: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """(index, table) of every invalid index in the user schemas, or on ``tables`` (existing ones)."""
    params = {"schemas": list(schemas) if schemas is not None else None, "tables": tables}
    return [(index, table) for index, table in conn.execute(INVALID_INDEXES, params).fetchall()]


class ForeignKey(NamedTuple):
    name: str
    table: str  # as regclass prints it
    referenced: str
    schema: str
    relname: str
    only: bool  # a plain table: its inheritance children are not bound by the key
    ref_schema: str
    ref_relname: str
    ref_only: bool
    columns: list[str]
    ref_columns: list[str]


def _orphans(conn: psycopg.Connection, fk: ForeignKey, statement_timeout: str) -> Check:
    subject, keys = f"{fk.table}.{fk.name}", ", ".join(fk.columns)
    query = sql.SQL(
        "SELECT count(*) FROM {only}{table} c WHERE {not_null} "
        "AND NOT EXISTS (SELECT 1 FROM {ref_only}{referenced} p WHERE {match})"
    ).format(
        only=sql.SQL("ONLY " if fk.only else ""),
        table=sql.Identifier(fk.schema, fk.relname),
        not_null=sql.SQL(" AND ").join(
            sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns
        ),
        ref_only=sql.SQL("ONLY " if fk.ref_only else ""),
        referenced=sql.Identifier(fk.ref_schema, fk.ref_relname),
        match=sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
            for p, c in zip(fk.ref_columns, fk.columns, strict=True)
        ),
    )
    what = f"{fk.name} ({fk.table} ({keys}) → {fk.referenced})"
    try:
        orphans = scalar(conn, query)
    except psycopg.errors.QueryCanceled:
        sentence = f"orphaned rows of {what} not counted within {statement_timeout}"
        return Check("orphans", subject, Outcome.NOT_CHECKED, sentence)
    if orphans:
        sentence = f"{orphans} row(s) of {fk.table} reference no row of {fk.referenced}: {what}"
        return Check("orphans", subject, Outcome.FAILED, sentence, orphans)
    return Check("orphans", subject, Outcome.PASSED, f"no orphaned rows: {what}", 0)


def _not_valid(name: str, table: str, definition: str, validated: bool) -> Check:
    subject = f"{table}.{name}"
    if validated:
        return Check(
            "not_valid",
            subject,
            Outcome.FAILED,
            f"{name} on {table} is still NOT VALID: the migration validates it",
        )
    return Check("not_valid", subject, Outcome.NOTED, f"{name} on {table} is NOT VALID ({definition})")


def _read_only(conn: psycopg.Connection, statement_timeout: str) -> None:
    conn.execute(
        "SELECT set_config('default_transaction_read_only', 'on', false), "
        "set_config('statement_timeout', %s, false)",
        (statement_timeout,),
    )
