"""A schema's catalog as comparable data: did a rollback give back exactly the schema it started from?

Objects are described by the definitions PostgreSQL prints (``pg_get_constraintdef``, ``pg_get_indexdef``
…), keyed by name, never by OID, so two databases or two moments compare equal when their schemas do.
Column order is left out: no rollback can restore it after a column is dropped and added back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import psycopg

Fingerprint = dict[str, dict[str, str]]

USER_SCHEMAS = """
SELECT oid FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp_%%'
  AND nspname NOT LIKE 'pg_toast_temp_%%' AND (%(schemas)s::text[] IS NULL OR nspname = ANY(%(schemas)s))
"""


def _comment(oid: str, catalog: str) -> str:
    """SQL appending `` COMMENT '…'`` to a definition when the object has a comment."""
    return f"|| coalesce(' COMMENT ' || quote_literal(obj_description({oid}, '{catalog}')), '')"


QUERIES = {
    "schemas": "SELECT nspname, coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace "
    "WHERE oid IN (SELECT oid FROM s)",
    "relations": "SELECT c.oid::regclass::text, "
    "c.relkind::text || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c "
    "WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
    "columns": "SELECT a.attrelid::regclass::text || '.' || quote_ident(a.attname), "
    "concat_ws(' ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' END, "
    "'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), "
    "nullif(a.attidentity::text, ''), nullif(a.attgenerated::text, ''), "
    "'COMMENT ' || col_description(a.attrelid, a.attnum)) "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
    "AND a.attnum > 0 AND NOT a.attisdropped",
    "constraints": "SELECT conrelid::regclass::text || ' ' || quote_ident(conname), "
    "pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' (not validated)' END "
    f"{_comment('oid', 'pg_constraint')} "
    "FROM pg_constraint WHERE connamespace IN (SELECT oid FROM s) AND conrelid <> 0",
    "indexes": "SELECT indexrelid::regclass::text, "
    "pg_get_indexdef(indexrelid) || CASE WHEN indisvalid THEN '' ELSE ' (invalid)' END "
    f"{_comment('indexrelid', 'pg_class')} "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE c.relnamespace IN (SELECT oid FROM s)",
    "views": "SELECT c.oid::regclass::text, pg_get_viewdef(c.oid) FROM pg_class c "
    "WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind IN ('v', 'm')",
    "functions": "SELECT p.oid::regprocedure::text, "
    f"pg_get_functiondef(p.oid) {_comment('p.oid', 'pg_proc')} FROM pg_proc p "
    "WHERE p.pronamespace IN (SELECT oid FROM s) AND p.prokind IN ('f', 'p') "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
    "triggers": "SELECT tgrelid::regclass::text || ' ' || quote_ident(tgname), pg_get_triggerdef(t.oid) "
    "|| CASE t.tgenabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (replica only)' "
    f"WHEN 'A' THEN ' (always)' ELSE '' END {_comment('t.oid', 'pg_trigger')} "
    "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE NOT t.tgisinternal AND c.relnamespace IN (SELECT oid FROM s)",
    "types": "SELECT t.oid::regtype::text, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) "
    f"{_comment('t.oid', 'pg_type')} "
    "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace IN (SELECT oid FROM s) "
    "GROUP BY t.oid",
    "domains": "SELECT t.oid::regtype::text, concat_ws(' ', format_type(t.typbasetype, t.typtypmod), "
    "CASE WHEN t.typnotnull THEN 'NOT NULL' END, 'DEFAULT ' || t.typdefault, "
    "(SELECT string_agg(pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname) FROM pg_constraint k "
    f"WHERE k.contypid = t.oid AND k.contype <> 'n')) {_comment('t.oid', 'pg_type')} "
    "FROM pg_type t WHERE t.typtype = 'd' AND t.typnamespace IN (SELECT oid FROM s)",
    # parameters and owning column, never the current value: rows inserted and rolled back move it
    "sequences": "SELECT q.seqrelid::regclass::text, concat_ws(' ', format_type(q.seqtypid, NULL), "
    "'START', q.seqstart, 'INCREMENT', q.seqincrement, 'MINVALUE', q.seqmin, 'MAXVALUE', q.seqmax, "
    "'CACHE', q.seqcache, CASE WHEN q.seqcycle THEN 'CYCLE' END, "
    "(SELECT 'OWNED BY ' || d.refobjid::regclass::text || '.' || quote_ident(a.attname) FROM pg_depend d "
    "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
    "WHERE d.classid = 'pg_class'::regclass AND d.objid = q.seqrelid AND d.deptype IN ('a', 'i') LIMIT 1)) "
    "FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid WHERE c.relnamespace IN (SELECT oid FROM s)",
    "extensions": "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql'",
}


def schema_fingerprint(conn: psycopg.Connection, schemas: Sequence[str] | None = None) -> Fingerprint:
    """The user schemas (all but PostgreSQL's own, or just ``schemas``) as {category: {name: definition}}."""
    params = {"schemas": list(schemas) if schemas is not None else None}
    return {
        category: {
            name: definition
            for name, definition in conn.execute(f"WITH s AS ({USER_SCHEMAS}) {query}", params).fetchall()
        }
        for category, query in QUERIES.items()
    }


class Change(NamedTuple):
    """An object that differs between two fingerprints; ``before`` or ``after`` is None where it is absent."""

    category: str  # "columns", "indexes" …
    kind: str  # the category, singular: "column", "index" …
    name: str
    before: str | None
    after: str | None


def fingerprint_changes(before: Fingerprint, after: Fingerprint) -> list[Change]:
    """Every object added, removed or changed between two fingerprints, by kind and name."""
    changes = []
    for category in sorted(before.keys() | after.keys()):
        old, new = before.get(category, {}), after.get(category, {})
        kind = category.removesuffix("es") if category.endswith("xes") else category.removesuffix("s")
        changes += [
            Change(category, kind, name, old.get(name), new.get(name))
            for name in sorted(old.keys() | new.keys())
            if old.get(name) != new.get(name)
        ]
    return changes


def fingerprint_diff(before: Fingerprint, after: Fingerprint) -> list[str]:
    """What changed between two fingerprints, one line per object, in words."""
    return sorted(_worded(change) for change in fingerprint_changes(before, after))


def _worded(c: Change) -> str:
    if c.before is None:
        return f"{c.kind} {c.name} added: {c.after}"
    if c.after is None:
        return f"{c.kind} {c.name} removed: {c.before}"
    return f"{c.kind} {c.name} changed: {c.before} -> {c.after}"
