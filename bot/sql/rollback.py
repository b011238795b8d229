"""Rollback scripts: the one written beside the migration, or one generated from its operations.

A generated rollback undoes every reversible operation in reverse order inside one transaction, so a
failing step leaves nothing half-done; what SQL alone cannot undo (dropped data, type changes, data
updates) is listed as ``-- MANUAL:`` with the words "restore from backup or write this rollback by
hand", and never silently left out. Facts only the target knows (a previous default, a previous
comment, whether a column was NOT NULL, names PostgreSQL chose) come from the catalog; when the
catalog cannot answer, the step says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pglast.stream import maybe_double_quote_name

from bot.sql.catalog import Catalog, ColumnInfo
from bot.sql.model import Operation, Rollback, RollbackStep
from bot.sql.operations import OperationMapper
from bot.sql.parse import ParsedStatement, parse_statements

ROLLBACK_SUFFIX = ".rollback.sql"
MANUAL = "restore from backup or write this rollback by hand"
# Operations that change nothing a rollback must restore.
NOTHING_TO_UNDO = {
    "set_setting", "transaction", "analyze", "vacuum", "vacuum_full", "cluster", "reindex",
    "validate_constraint", "lock_table",
}  # fmt: skip
# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER = 63


def find_rollback(migration_path: Path) -> Path | None:
    """``NAME.rollback.sql`` beside ``NAME.sql``, when the team wrote one."""
    candidate = migration_path.with_name(migration_path.name.removesuffix(".sql") + ROLLBACK_SUFFIX)
    return candidate if candidate.is_file() else None


def load_rollback(path: Path) -> Rollback:
    """A hand-written rollback; raises SqlSyntaxError when it does not parse."""
    sql = path.read_text(encoding="utf-8")
    parse_statements(sql)
    return Rollback(source="file", sql=sql, steps=[], path=str(path))


def quote(name: str) -> str:
    return maybe_double_quote_name(name)


def split_name(name: str) -> tuple[str | None, str]:
    """``schema.name`` as written (parts possibly double-quoted) -> (schema or None, unquoted name)."""
    parts, part, quoted, i = [], "", False, 0
    while i < len(name):
        ch = name[i]
        if ch == '"' and quoted and name[i + 1 : i + 2] == '"':
            part, i = part + '"', i + 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(part)
            part = ""
        else:
            part += ch
        i += 1
    parts.append(part)
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


def _in_schema_of(table: str, name: str) -> str:
    """An index or relation name qualified with ``table``'s schema, as DROP INDEX needs it."""
    schema, _ = split_name(table)
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def _truncate_name(name: str) -> str:
    return name.encode()[:MAX_IDENTIFIER].decode(errors="ignore")


class Inverse(NamedTuple):
    """How one operation is undone: SQL, or the reason it cannot be (neither: nothing to undo)."""

    sql: str | None = None
    reason: str | None = None
    outside: bool = False  # cannot run inside the rollback's transaction (CONCURRENTLY)


class _Generator:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.added_columns: set[tuple[str, str]] = set()
        self.taken: dict[str | None, set[str]] = {}

    # --- names PostgreSQL picks for unnamed objects ------------------------------------------------
    def choose_name(self, table: str, columns: list[str], suffix: str, relation: bool) -> tuple[str, str]:
        """PostgreSQL's ChooseRelationName/ChooseConstraintName: ``table_cols_suffix``, numbered on collision.

        Returns the name and a note when the catalog could not tell which names were taken.
        """
        schema, relname = split_name(table)
        base = "_".join([relname, *columns, suffix]) if columns else f"{relname}_{suffix}"
        names = self.catalog.schema_names(schema)
        note = "" if names is not None else " (name as PostgreSQL picks it; taken names not checked)"
        taken = self.taken.setdefault(schema, set())
        existing = (names.relations if relation else names.constraints) if names else frozenset()
        candidate, n = _truncate_name(base), 0
        while candidate in existing or candidate in taken:
            n += 1
            candidate = _truncate_name(base[: MAX_IDENTIFIER - len(str(n))]) + str(n)
        taken.add(candidate)
        return candidate, note

    # --- inverses -------------------------------------------------------------------------------
    def inverse(self, op: Operation) -> Inverse:
        method: Callable[[Operation], Inverse] | None = getattr(self, f"_undo_{op.kind}", None)
        if method is None:
            return Inverse(reason=f"{op.summary}: {MANUAL}")
        return method(op)

    def _undo_create_table(self, op: Operation) -> Inverse:
        return Inverse(f"DROP TABLE {op.table};")

    def _undo_create_index(self, op: Operation) -> Inverse:
        assert op.table is not None
        name, note = op.details["index"], ""
        if not name:
            name, note = self.choose_name(op.table, _index_name_parts(op.details["columns"]), "idx", True)
        concurrent = op.details["concurrent"]
        sql = f"DROP INDEX {'CONCURRENTLY ' if concurrent else ''}{_in_schema_of(op.table, name)};"
        return Inverse((f"-- {note.strip()}\n" if note else "") + sql, outside=concurrent)

    def _undo_add_column(self, op: Operation) -> Inverse:
        assert op.table is not None
        self.added_columns.add((op.table, op.details["column"]))
        return Inverse(f"ALTER TABLE {op.table} DROP COLUMN {quote(op.details['column'])};")

    def _undo_add_constraint(self, op: Operation) -> Inverse:
        d = op.details
        if d.get("inline"):
            return Inverse()  # dropped with its table
        assert op.table is not None
        name, note = d["constraint"], ""
        if not name:
            kind = d["constraint_type"]
            if kind == "primary_key":
                name, note = self.choose_name(op.table, [], "pkey", True)
            elif kind == "check":
                name, note = self.choose_name(op.table, d.get("check_columns", []), "check", False)
            else:
                suffix = {"foreign_key": "fkey", "unique": "key", "exclusion": "excl"}.get(kind, kind)
                name, note = self.choose_name(op.table, d["columns"], suffix, kind in {"unique", "exclusion"})
        sql = f"ALTER TABLE {op.table} DROP CONSTRAINT {quote(name)};"
        return Inverse((f"-- {note.strip()}\n" if note else "") + sql)

    def _column_before(self, op: Operation) -> tuple[bool, ColumnInfo | None]:
        """(added in this file, catalog answer) for the column an ALTER COLUMN touches."""
        assert op.table is not None
        column = op.details["column"]
        if (op.table, column) in self.added_columns:
            return True, None
        return False, self.catalog.column(op.table, column)

    def _undo_set_not_null(self, op: Operation) -> Inverse:
        added, info = self._column_before(op)
        if not added and info is not None and info.not_null:
            return Inverse()  # it was NOT NULL already: nothing changed
        return Inverse(f"ALTER TABLE {op.table} ALTER COLUMN {quote(op.details['column'])} DROP NOT NULL;")

    def _undo_drop_not_null(self, op: Operation) -> Inverse:
        added, info = self._column_before(op)
        if not added and info is not None and not info.not_null:
            return Inverse()
        return Inverse(f"ALTER TABLE {op.table} ALTER COLUMN {quote(op.details['column'])} SET NOT NULL;")

    def _undo_default(self, op: Operation) -> Inverse:
        column = quote(op.details["column"])
        added, info = self._column_before(op)
        if added:
            return Inverse(f"ALTER TABLE {op.table} ALTER COLUMN {column} DROP DEFAULT;")
        if info is None:
            return Inverse(reason=f"{op.summary}: previous default unknown (target unreachable); {MANUAL}")
        action = f"SET DEFAULT {info.default}" if info.default is not None else "DROP DEFAULT"
        return Inverse(f"ALTER TABLE {op.table} ALTER COLUMN {column} {action};")

    _undo_set_default = _undo_default
    _undo_drop_default = _undo_default

    def _undo_rename_column(self, op: Operation) -> Inverse:
        d = op.details
        return Inverse(
            f"ALTER TABLE {op.table} RENAME COLUMN {quote(d['new_name'])} TO {quote(d['column'])};"
        )

    def _undo_rename_table(self, op: Operation) -> Inverse:
        assert op.table is not None
        _, old = split_name(op.table)
        renamed = _in_schema_of(op.table, op.details["new_name"])
        return Inverse(f"ALTER TABLE {renamed} RENAME TO {quote(old)};")

    def _undo_rename_index(self, op: Operation) -> Inverse:
        index = op.details["index"]
        _, old = split_name(index)
        return Inverse(f"ALTER INDEX {_in_schema_of(index, op.details['new_name'])} RENAME TO {quote(old)};")

    def _undo_rename_constraint(self, op: Operation) -> Inverse:
        d = op.details
        sql = f"ALTER TABLE {op.table} RENAME CONSTRAINT {quote(d['new_name'])} TO {quote(d['constraint'])};"
        return Inverse(sql)

    def _replaced(self, op: Operation, kind: str, names: list[str], args: list[str]) -> str | None:
        """Why ``CREATE OR REPLACE`` cannot be undone here, or None when it created a new object."""
        if not op.details["replace"]:
            return None
        info = self.catalog.object_info(kind, names, args)
        if info is None:
            return f"{op.summary}: may replace an existing {kind} (target unreachable); {MANUAL}"
        if info.exists:
            return f"{op.summary}: the previous definition is not kept; {MANUAL}"
        return None

    def _undo_create_view(self, op: Operation) -> Inverse:
        view = op.details["view"]
        schema, name = split_name(view)
        reason = self._replaced(op, "view", [n for n in (schema, name) if n], [])
        return Inverse(reason=reason) if reason else Inverse(f"DROP VIEW {view};")

    def _undo_create_function(self, op: Operation) -> Inverse:
        d = op.details
        reason = self._replaced(op, "function", d["function"].split("."), d["args"])
        if reason:
            return Inverse(reason=reason)
        name = ".".join(quote(part) for part in d["function"].split("."))
        return Inverse(f"DROP FUNCTION {name}({', '.join(d['args'])});")

    def _undo_create_trigger(self, op: Operation) -> Inverse:
        if op.details["replace"]:
            return Inverse(reason=f"{op.summary}: a replaced trigger's definition is not kept; {MANUAL}")
        return Inverse(f"DROP TRIGGER {quote(op.details['trigger'])} ON {op.table};")

    def _undo_create_schema(self, op: Operation) -> Inverse:
        return Inverse(f"DROP SCHEMA {quote(op.details['schema'])};")

    def _undo_create_type(self, op: Operation) -> Inverse:
        return Inverse(f"DROP TYPE {op.details['type']};")

    def _undo_create_sequence(self, op: Operation) -> Inverse:
        return Inverse(f"DROP SEQUENCE {op.details['sequence']};")

    def _undo_create_extension(self, op: Operation) -> Inverse:
        return Inverse(f"DROP EXTENSION {quote(op.details['extension'])};")

    def _undo_comment(self, op: Operation) -> Inverse:
        what, target = op.details["object"], op.details["target"]
        kind = {"column": "table column"}.get(what, what)
        info = self.catalog.object_info(kind, op.details["names"])
        if info is None:
            return Inverse(reason=f"{op.summary}: previous comment unknown (target unreachable); {MANUAL}")
        previous = "NULL" if info.comment is None else "'" + info.comment.replace("'", "''") + "'"
        return Inverse(f"COMMENT ON {what.upper()} {target} IS {previous};")


def _index_name_parts(columns: list[str]) -> list[str]:
    """PostgreSQL names an expression's part of an index "expr"."""
    return [c if c.replace("_", "").isalnum() else "expr" for c in columns]


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0] if sql.strip() else ""
    return line if len(line) <= 100 else line[:99] + "…"


def generate_rollback(
    parsed: list[ParsedStatement], *, catalog: Catalog, lock_timeout: str = "5s"
) -> Rollback:
    """Undo ``parsed`` in reverse order, in one transaction; CONCURRENTLY drops after it commits."""
    generator = _Generator(catalog)
    planned: list[tuple[RollbackStep, int, str, bool]] = []  # step, line, forward SQL's first line, outside
    for item in parsed:
        stmt = item.statement
        for op in OperationMapper(stmt).map(item.node):
            if op.kind in NOTHING_TO_UNDO:
                continue
            sql, reason, outside = generator.inverse(op)
            if sql is not None or reason is not None:
                planned.append(
                    (
                        RollbackStep(stmt.index, sql, reason, outside),
                        stmt.line,
                        _first_line(stmt.sql),
                        outside,
                    )
                )
    planned.reverse()
    lines = [
        "-- Rollback generated by migrate-bot: the inverse of each statement, newest first.",
        "BEGIN;",
        f"SET LOCAL lock_timeout = '{lock_timeout}';",
    ]
    for step, line, forward, outside in planned:
        if outside:
            continue
        if step.irreversible_reason:
            lines += ["", f"-- MANUAL: L{line} {step.irreversible_reason}"]
        else:
            lines += ["", f"-- undo L{line}: {forward}", step.sql or ""]
    lines += ["", "COMMIT;"]
    for step, line, forward, outside in planned:
        if outside:
            lines += ["", f"-- undo L{line} (cannot run inside a transaction): {forward}", step.sql or ""]
    return Rollback(source="generated", sql="\n".join(lines) + "\n", steps=[p[0] for p in planned])
