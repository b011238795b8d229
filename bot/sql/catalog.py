"""Facts about the target database that analysis and rollback generation depend on.

``Catalog`` is the port; ``LiveCatalog`` reads a reachable PostgreSQL with psycopg, ``OfflineCatalog``
answers "unknown" for everything but a configured server version. Rules that need a fact the catalog
cannot give must say so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import psycopg


@dataclass(frozen=True)
class ColumnInfo:
    data_type: str
    not_null: bool
    default: str | None  # SQL expression as pg_get_expr prints it, None when there is no default


class Catalog(Protocol):
    source: str  # "live", "configured" or "unknown"

    def server_version_num(self) -> int | None: ...

    def row_estimate(self, table: str) -> int | None: ...

    def column(self, table: str, column: str) -> ColumnInfo | None: ...

    def index_column_lists(self, table: str) -> list[tuple[str, ...]] | None:
        """Column lists of the table's existing indexes (None when unknown)."""
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
