"""Synthetic rows for a rehearsal on a copy without data (schema only, replayed), so that its timings and
locks mean something: N rows a table, built from the catalog as one ``INSERT … SELECT … FROM
generate_series`` each.

Each column gets a value of its type (numbers count up past the largest there, text carries the row number
and a tag unique to the run, uuids are hashes of both) cast to the column's type, so ``varchar(n)`` and
domains hold. Identity, generated and defaulted columns take their defaults, unless a unique index needs
the value. A foreign key takes the keys of existing rows of the table it references, round-robin; a
nullable one with nothing to reference stays NULL. Rows colliding with a unique index are skipped (``ON
CONFLICT DO NOTHING``). A CHECK that refuses the values is tried again with its nullable columns NULL. A
table that still cannot be filled is left as it is, and why is said.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from bot.execution.target import error_text, scalar

REFERENCED_ROWS = 10_000  # distinct keys a foreign key cycles through
# Columns of a table, domains seen through to their base type.
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), b.oid::regtype::text, b.typtype, b.typcategory,
       a.attnotnull, a.attidentity <> '' OR a.attgenerated <> '', d.adbin IS NOT NULL,
       coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%', false),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique
               AND a.attnum = ANY(i.indkey)),
       t.typtype = 'd' OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid
                                  AND k.contype = 'c' AND a.attnum = ANY(k.conkey))
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
FOREIGN_KEYS = """
SELECT c.confrelid, c.confrelid::regclass::text,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = %s ORDER BY c.conname
"""
TABLES = """
SELECT c.oid, c.oid::regclass::text FROM pg_class c WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p')
"""
REFERENCED = "SELECT confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid = %s"
NUMBERS = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}
# A value for row number ``g`` by base type; {tag} is a literal unique to the run, {name} the column's.
VALUES = {
    "boolean": "g % 2 = 0",
    "uuid": "md5({tag} || g)::uuid",
    "timestamp with time zone": "now() - g * interval '1 minute'",
    "timestamp without time zone": "localtimestamp - g * interval '1 minute'",
    "date": "current_date - (g % 3650)::int",
    "time without time zone": "time '00:00' + g * interval '1 second'",
    "interval": "g * interval '1 second'",
    "json": "json_build_object('n', g)",
    "jsonb": "jsonb_build_object('n', g)",
    "bytea": "decode(md5({tag} || g), 'hex')",
    "inet": "inet '10.0.0.0' + g",
}


@dataclass(frozen=True)
class Fill:
    table: str
    rows: int  # rows added
    skipped: str | None = None  # why the table was left as it was

    def sentence(self) -> str:
        if self.skipped:
            return f"{self.table}: not filled ({self.skipped})"
        return f"{self.table}: {self.rows:,} synthetic row(s) added"


@dataclass(frozen=True)
class _Column:
    name: str
    type: str  # as the column is declared
    base: str  # its base type (a domain's)
    typtype: str
    category: str
    not_null: bool
    automatic: bool  # identity or generated
    has_default: bool
    sequence_default: bool
    unique: bool
    checked: bool  # in a CHECK constraint, or of a domain (which may have one)


def fill_tables(conn: psycopg.Connection, dsn: str, tables: Sequence[str], rows: int) -> list[Fill]:
    """Add ``rows`` rows to each of ``tables`` that exists and is a table (names as the analysis gives
    them), referenced tables first, then ANALYZE those filled, as autovacuum would have."""
    found: dict[int, str] = dict(row for table in tables for row in conn.execute(TABLES, (table,)).fetchall())
    tag = uuid.uuid4().hex[:8]
    fills = [_fill(conn, dsn, oid, found[oid], rows, tag) for oid in _referenced_first(conn, found)]
    for fill in fills:
        if fill.rows:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(fill.table)))
    return fills


def _referenced_first(conn: psycopg.Connection, tables: dict[int, str]) -> list[int]:
    order: list[int] = []

    def visit(oid: int, path: frozenset[int]) -> None:
        if oid in order or oid in path:  # done, or a cycle of foreign keys: any order will do
            return
        for (referenced,) in conn.execute(REFERENCED, (oid,)).fetchall():
            if referenced in tables:
                visit(referenced, path | {oid})
        order.append(oid)

    for oid in tables:
        visit(oid, frozenset())
    return order


def _fill(conn: psycopg.Connection, dsn: str, oid: int, table: str, rows: int, tag: str) -> Fill:
    columns = [_Column(*row) for row in conn.execute(COLUMNS, (oid,)).fetchall()]
    planned = _values(conn, oid, table, columns, tag)
    if isinstance(planned, str):
        return Fill(table, 0, planned)
    values, joins = planned
    # a CHECK that refuses the values: once more with its nullable columns NULL (a CHECK passes on NULL)
    checked = {c.name for c in columns if c.checked and not c.not_null} & values.keys()
    attempts = [values, {k: v for k, v in values.items() if k not in checked}] if checked else [values]
    refusal = ""
    for attempt in attempts:
        insert = sql.SQL(
            "INSERT INTO {table}{columns} SELECT {values} FROM generate_series(1, {rows}) AS g{joins} "
            "ON CONFLICT DO NOTHING"
        ).format(
            table=sql.SQL(table),
            columns=sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, attempt)))
            if attempt
            else sql.SQL(""),
            values=sql.SQL(", ").join(attempt.values()),
            rows=sql.Literal(rows),
            joins=sql.SQL("").join(joins),
        )
        try:
            return Fill(table, conn.execute(insert).rowcount)
        except psycopg.errors.CheckViolation as err:
            refusal = error_text(err, dsn)
        except psycopg.Error as err:
            return Fill(table, 0, error_text(err, dsn))
    return Fill(table, 0, refusal)


def _values(
    conn: psycopg.Connection, oid: int, table: str, columns: list[_Column], tag: str
) -> tuple[dict[str, sql.Composable], list[sql.Composable]] | str:
    """The value of each column given one (a foreign key's from its join), and the joins; or why the
    table cannot be filled."""
    values: dict[str, sql.Composable] = {}
    joins: list[sql.Composable] = []
    for number, (referenced_oid, referenced, keys, referenced_keys) in enumerate(
        conn.execute(FOREIGN_KEYS, (oid,)).fetchall()
    ):
        count = 0 if referenced_oid == oid else _count(conn, referenced, referenced_keys)
        if not count:
            if any(c.not_null for c in columns if c.name in keys):
                return f"a NOT NULL foreign key references {referenced}, which has no rows"
            values.update({key: sql.NULL for key in keys if key not in values})
            continue
        alias = sql.Identifier(f"fk{number}")
        joins.append(_keys_of(referenced, referenced_keys, count, alias))
        for key, referenced_key in zip(keys, referenced_keys, strict=True):
            values.setdefault(key, sql.SQL("{}.{}").format(alias, sql.Identifier(referenced_key)))
    for column in columns:
        if column.name in values or column.automatic or column.sequence_default:
            continue
        if column.has_default and not column.unique:
            continue
        value = _value(conn, table, column, tag)
        if value is not None:
            values[column.name] = sql.SQL("CAST(({}) AS {})").format(value, sql.SQL(column.type))
        elif column.not_null and not column.has_default:
            return f"no value of type {column.type} can be made for NOT NULL column {column.name}"
    return values, joins


def _keys_of(referenced: str, keys: list[str], count: int, alias: sql.Identifier) -> sql.Composable:
    """A join giving row ``g`` the keys of referenced row ``g % count``."""
    return sql.SQL(
        " JOIN (SELECT {keys}, row_number() OVER () - 1 AS rn FROM {referenced} WHERE {present} LIMIT {n}) "
        "{alias} ON {alias}.rn = g % {n}"
    ).format(
        keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
        referenced=sql.SQL(referenced),
        present=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(k)) for k in keys),
        n=sql.Literal(count),
        alias=alias,
    )


def _count(conn: psycopg.Connection, table: str, keys: list[str]) -> int:
    """Rows of ``table`` with all ``keys`` set, up to REFERENCED_ROWS."""
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT {}) AS r").format(
        sql.SQL(table),
        sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(k)) for k in keys),
        sql.Literal(REFERENCED_ROWS),
    )
    return scalar(conn, query)


def _value(conn: psycopg.Connection, table: str, column: _Column, tag: str) -> sql.Composable | None:
    """An expression of ``g`` for the column, before the cast to its type; None when there is none."""
    literal = sql.Literal(tag).as_string(conn)
    if column.base in NUMBERS:
        if column.base == "smallint" and not column.unique:
            return sql.SQL("g % 32000")
        return sql.SQL("g + {}").format(sql.Literal(_largest(conn, table, column) if column.unique else 0))
    if column.category == "S":  # text, varchar, char …
        if "email" in column.name.lower():
            return sql.SQL("'u' || g || {}").format(sql.Literal(f".{tag}@example.com"))
        return sql.SQL("g || {}").format(sql.Literal(f" {column.name} {tag}"))
    if column.typtype == "e":
        return sql.SQL("(enum_range(NULL::{type}))[1 + g % cardinality(enum_range(NULL::{type}))]").format(
            type=sql.SQL(column.base)
        )
    if column.category == "A":
        return sql.SQL("'{}'")
    template = VALUES.get(column.base)
    return sql.SQL(template.format(tag=literal)) if template else None


def _largest(conn: psycopg.Connection, table: str, column: _Column) -> int:
    """Past the column's largest value, so counted values do not collide with existing ones."""
    query = sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column.name), sql.SQL(table))
    largest = scalar(conn, query)
    return 0 if largest is None else int(largest) + 1
