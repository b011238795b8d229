"""Facts about the target database that analysis and rollback generation depend on.

``Catalog`` is the port; ``LiveCatalog`` reads a reachable PostgreSQL with psycopg, ``OfflineCatalog``
answers "unknown" for everything but a configured server version. Rules that need a fact the catalog
cannot give must say so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class ColumnInfo:
    """A column as the live catalog has it: what a rollback needs to recreate it."""

    data_type: str
    not_null: bool
    default: str | None  # SQL expression as pg_get_expr prints it, None when there is no default


@dataclass(frozen=True)
class ObjectInfo:
    """What a rollback must restore about an object: whether it was there, and its comment."""

    exists: bool
    comment: str | None  # None when the object has no comment


@dataclass(frozen=True)
class SchemaNames:
    """Names PostgreSQL avoids when it names an unnamed index or constraint in a schema."""

    relations: frozenset[str]
    constraints: frozenset[str]


class Catalog(Protocol):
    source: str  # "live", "configured" or "unknown"

    def server_version_num(self) -> int | None: ...

    def row_estimate(self, table: str) -> int | None: ...

    def column(self, table: str, column: str) -> ColumnInfo | None: ...

    def index_column_lists(self, table: str) -> list[tuple[str, ...]] | None:
        """Column lists of the table's existing indexes (None when unknown)."""
        ...

    def foreign_key_links(self, table: str) -> list[str] | None:
        """Tables that ``table`` references or is referenced by (None when unknown)."""
        ...

    def index_table(self, index: str) -> str | None:
        """The table an existing index belongs to (None when unknown or no such index)."""
        ...

    def object_info(self, kind: str, names: Sequence[str], args: Sequence[str] = ()) -> ObjectInfo | None:
        """Whether an object exists and its comment (None when unknown).

        The object is addressed as ``pg_get_object_address`` takes it: ``kind`` such as ``"table"``,
        ``"table column"`` or ``"function"``, unquoted name parts, and argument type names.
        """
        ...

    def schema_names(self, schema: str | None) -> SchemaNames | None:
        """Relation and constraint names in ``schema`` (the current schema when None); None when unknown."""
        ...

    def dependents(self, table: str, column: str | None = None) -> list[str] | None:
        """Views on ``table`` (on ``column``); for a whole table, also other tables' foreign keys to it."""
        ...

    def foreign_keys(self, table: str) -> dict[str, str] | None:
        """The table's foreign keys: constraint name -> referenced table (None when unknown)."""
        ...

    def not_null_checks(self, table: str) -> dict[str, str] | None:
        """Valid ``CHECK (col IS NOT NULL)`` constraints of the table: column -> constraint name."""
        ...

    def index_definition(self, index: str) -> str | None:
        """``CREATE INDEX …`` of an existing index, as pg_get_indexdef prints it."""
        ...

    def constraint_definition(self, table: str, constraint: str) -> str | None:
        """A constraint as pg_get_constraintdef prints it (with ``NOT VALID`` when it is not validated)."""
        ...


class OfflineCatalog:
    """The target is unreachable: only the configured server version, if any, is known."""

    def __init__(self, server_version_num: int | None = None) -> None:
        self._version = server_version_num
        self.source = "configured" if server_version_num else "unknown"

    def server_version_num(self) -> int | None:
        return self._version

    def row_estimate(self, table: str) -> int | None:
        return None

    def column(self, table: str, column: str) -> ColumnInfo | None:
        return None

    def index_column_lists(self, table: str) -> list[tuple[str, ...]] | None:
        return None

    def foreign_key_links(self, table: str) -> list[str] | None:
        return None

    def index_table(self, index: str) -> str | None:
        return None

    def object_info(self, kind: str, names: Sequence[str], args: Sequence[str] = ()) -> ObjectInfo | None:
        return None

    def schema_names(self, schema: str | None) -> SchemaNames | None:
        return None

    def dependents(self, table: str, column: str | None = None) -> list[str] | None:
        return None

    def foreign_keys(self, table: str) -> dict[str, str] | None:
        return None

    def not_null_checks(self, table: str) -> dict[str, str] | None:
        return None

    def index_definition(self, index: str) -> str | None:
        return None

    def constraint_definition(self, table: str, constraint: str) -> str | None:
        return None


class LiveCatalog:
    """Reads the target's catalog over one connection; answers are cached for one analysis."""

    source = "live"

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._cache: dict[tuple[str, ...], object] = {}

    def _one(self, key: tuple[str, ...], sql: str, params: tuple[object, ...]) -> object:
        if key not in self._cache:
            row = self._conn.execute(sql, params).fetchone()
            self._cache[key] = row[0] if row else None
        return self._cache[key]

    def server_version_num(self) -> int | None:
        value = self._one(("version",), "SELECT current_setting('server_version_num')::int", ())
        return int(value) if value is not None else None  # type: ignore[call-overload]

    def row_estimate(self, table: str) -> int | None:
        value = self._one(
            ("rows", table),
            "SELECT CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END "
            "FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (table,),
        )
        return int(value) if value is not None else None  # type: ignore[call-overload]

    def column(self, table: str, column: str) -> ColumnInfo | None:
        key = ("column", table, column)
        if key not in self._cache:
            row = self._conn.execute(
                "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "pg_get_expr(d.adbin, d.adrelid) "
                "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
                (table, column),
            ).fetchone()
            self._cache[key] = ColumnInfo(row[0], row[1], row[2]) if row else None
        return self._cache[key]  # type: ignore[return-value]

    def index_column_lists(self, table: str) -> list[tuple[str, ...]] | None:
        key = ("indexes", table)
        if key not in self._cache:
            rows = self._conn.execute(
                "SELECT array_agg(a.attname ORDER BY k.ord) "
                "FROM pg_index i "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = to_regclass(%s) GROUP BY i.indexrelid",
                (table,),
            ).fetchall()
            self._cache[key] = [tuple(r[0]) for r in rows]
        return self._cache[key]  # type: ignore[return-value]

    def foreign_key_links(self, table: str) -> list[str] | None:
        key = ("fk_links", table)
        if key not in self._cache:
            rows = self._conn.execute(
                "SELECT (CASE WHEN conrelid = to_regclass(%s) THEN confrelid ELSE conrelid END)"
                "::regclass::text "
                "FROM pg_constraint WHERE contype = 'f' AND to_regclass(%s) IN (conrelid, confrelid)",
                (table, table),
            ).fetchall()
            self._cache[key] = [r[0] for r in rows]
        return self._cache[key]  # type: ignore[return-value]

    def index_table(self, index: str) -> str | None:
        value = self._one(
            ("index_table", index),
            "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = to_regclass(%s)",
            (index,),
        )
        return str(value) if value is not None else None

    def object_info(self, kind: str, names: Sequence[str], args: Sequence[str] = ()) -> ObjectInfo | None:
        key = ("object", kind, *names, "(", *args)
        if key not in self._cache:
            self._cache[key] = self._object_info(kind, list(names), list(args))
        return self._cache[key]  # type: ignore[return-value]

    def _object_info(self, kind: str, names: list[str], args: list[str]) -> ObjectInfo | None:
        # imported here, with the connection already made: offline planning never loads psycopg (slow to load)
        from psycopg import errors

        missing = (
            errors.UndefinedTable,
            errors.UndefinedColumn,
            errors.UndefinedObject,
            errors.UndefinedFunction,
            errors.InvalidSchemaName,
        )
        # pg_get_object_address raises for a missing object: a savepoint keeps the caller's transaction usable
        try:
            with self._conn.transaction():
                row = self._conn.execute(
                    "SELECT coalesce(d.description, s.description) "
                    "FROM pg_get_object_address(%s, %s::text[], %s::text[]) a "
                    "LEFT JOIN pg_description d "
                    "ON (d.classoid, d.objoid, d.objsubid) = (a.classid, a.objid, a.objsubid) "
                    "LEFT JOIN pg_shdescription s ON (s.classoid, s.objoid) = (a.classid, a.objid)",
                    (kind, names, args),
                ).fetchone()
        except missing:
            return ObjectInfo(False, None)
        except errors.WrongObjectType:
            return ObjectInfo(True, None)  # the name is taken by an object of another kind
        except errors.Error:
            return None
        return ObjectInfo(True, row[0])  # type: ignore[index]

    def schema_names(self, schema: str | None) -> SchemaNames | None:
        key = ("schema_names", schema or "")
        if key not in self._cache:
            row = self._conn.execute(
                "WITH n AS (SELECT oid FROM pg_namespace WHERE nspname = coalesce(%s, current_schema())) "
                "SELECT array(SELECT relname::text FROM pg_class WHERE relnamespace IN (SELECT oid FROM n)), "
                "array(SELECT conname::text FROM pg_constraint WHERE connamespace IN (SELECT oid FROM n))",
                (schema,),
            ).fetchone()
            self._cache[key] = SchemaNames(frozenset(row[0]), frozenset(row[1]))  # type: ignore[index]
        return self._cache[key]  # type: ignore[return-value]

    def _all(self, key: tuple[str, ...], sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        if key not in self._cache:
            self._cache[key] = self._conn.execute(sql, params).fetchall()
        return self._cache[key]  # type: ignore[return-value]

    def dependents(self, table: str, column: str | None = None) -> list[str] | None:
        rows = self._all(
            ("dependents", table, column or ""),
            "SELECT DISTINCT 'view ' || r.ev_class::regclass::text FROM pg_depend d "
            "JOIN pg_rewrite r ON r.oid = d.objid "
            "WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND d.refobjid = to_regclass(%(t)s) AND r.ev_class <> d.refobjid AND (%(c)s::text IS NULL "
            "OR d.refobjsubid = (SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass(%(t)s) "
            "AND attname = %(c)s)) "
            "UNION ALL SELECT 'foreign key ' || quote_ident(conname) || ' on ' || conrelid::regclass::text "
            "FROM pg_constraint WHERE %(c)s::text IS NULL AND contype = 'f' "
            "AND confrelid = to_regclass(%(t)s) AND conrelid <> confrelid ORDER BY 1",
            {"t": table, "c": column},  # type: ignore[arg-type]
        )
        return [str(r[0]) for r in rows]

    def foreign_keys(self, table: str) -> dict[str, str] | None:
        rows = self._all(
            ("foreign_keys", table),
            "SELECT conname::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = to_regclass(%s)",
            (table,),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def not_null_checks(self, table: str) -> dict[str, str] | None:
        rows = self._all(
            ("not_null_checks", table),
            "SELECT a.attname::text, c.conname::text FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'c' AND c.convalidated AND c.conrelid = to_regclass(%s) "
            "AND cardinality(c.conkey) = 1 "
            "AND pg_get_constraintdef(c.oid) = 'CHECK ((' || quote_ident(a.attname) || ' IS NOT NULL))'",
            (table,),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def index_definition(self, index: str) -> str | None:
        value = self._one(
            ("index_definition", index),
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
            (index,),
        )
        return str(value) if value is not None else None

    def constraint_definition(self, table: str, constraint: str) -> str | None:
        value = self._one(
            ("constraint_definition", table, constraint),
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND conname = %s",
            (table, constraint),
        )
        return str(value) if value is not None else None
