"""Rollback scripts: the one written beside the migration, or one generated from its operations.

A generated rollback undoes every operation in exact reverse order. Runs of statements that can run in a
transaction are one transaction each, so a failing step leaves nothing half-done; a statement that
cannot (``DROP INDEX CONCURRENTLY``) runs alone between them, where reverse order puts it. What SQL alone
cannot undo (dropped data, data updates, code the analysis cannot see) is listed as ``-- MANUAL:`` with
the words "restore from backup or write this rollback by hand", and never silently left out. Facts only
the target knows (a previous default, type, comment, index or constraint definition, names PostgreSQL
chose) come from the catalog; when the catalog cannot answer, the step says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from pglast import ast
from pglast.stream import RawStream, maybe_double_quote_name

from bot.sql.catalog import Catalog, ColumnInfo
from bot.sql.model import Kind, Operation, Rollback, RollbackStep
from bot.sql.nodes import quoted
from bot.sql.parse import ParsedStatement

ROLLBACK_SUFFIX = ".rollback.sql"
MANUAL = "restore from backup or write this rollback by hand"
# Operations that change nothing a rollback must restore.
NOTHING_TO_UNDO = {
    Kind.SET_SETTING, Kind.TRANSACTION, Kind.ANALYZE, Kind.VACUUM, Kind.VACUUM_FULL, Kind.CLUSTER,
    Kind.REINDEX, Kind.LOCK_TABLE, Kind.REFRESH_MATERIALIZED_VIEW,
}  # fmt: skip
# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER = 63


def find_rollback(migration_path: Path) -> Path | None:
    """``NAME.rollback.sql`` beside ``NAME.sql``, when the team wrote one."""
    candidate = migration_path.with_name(migration_path.name.removesuffix(".sql") + ROLLBACK_SUFFIX)
    return candidate if candidate.is_file() else None


def file_rollback(sql: str, path: Path) -> Rollback:
    """A hand-written rollback, as written (the planner reads and analyses it: ``bot.drafting``)."""
    return Rollback(source="file", sql=sql, steps=[], path=str(path))


def quote(name: str) -> str:
    return maybe_double_quote_name(name)


def literal(text: str | None) -> str:
    """A string constant as SQL writes it (``NULL`` for None), quoted by pglast's printer: psycopg's quoting
    would make every plan load psycopg, which takes longer than planning a small file."""
    return "NULL" if text is None else str(RawStream()(ast.A_Const(val=ast.String(sval=text))))


def split_name(name: str) -> tuple[str | None, str]:
    """``schema.name`` as written (parts possibly double-quoted) -> (schema or None, unquoted name)."""
    parts, part, in_quotes, i = [], "", False, 0
    while i < len(name):
        ch = name[i]
        if ch == '"' and in_quotes and name[i + 1 : i + 2] == '"':
            part, i = part + '"', i + 2
            continue
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "." and not in_quotes:
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
    return quoted((schema, name))


def _truncate_name(name: str) -> str:
    return name.encode()[:MAX_IDENTIFIER].decode(errors="ignore")


class Undo(NamedTuple):
    """One rollback statement; ``outside`` when it cannot run inside a transaction (CONCURRENTLY)."""

    sql: str
    outside: bool = False


class Inverse(NamedTuple):
    """How one operation is undone: statements in order, or the reason it cannot be (neither: nothing)."""

    undo: tuple[Undo, ...] = ()
    reason: str | None = None


def _do(*statements: str) -> Inverse:
    return Inverse(tuple(Undo(s) for s in statements))


def _manual(op: Operation, why: str = "") -> Inverse:
    return Inverse(reason=f"{op.summary}: {why + '; ' if why else ''}{MANUAL}")


class _Generator:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.added_columns: set[tuple[str, str]] = set()
        self.added_constraints: set[tuple[str, str]] = set()
        # indexes created in this file: name -> (position in ``planned``, how to create it again)
        self.created_indexes: dict[str, tuple[int, Undo]] = {}
        self.taken: dict[str | None, set[str]] = {}
        self.planned: list[tuple[Operation, Inverse, int, str]] = []  # op, inverse, line, forward SQL

    # --- names PostgreSQL picks for unnamed objects ------------------------------------------------
    def choose_name(self, table: str, columns: list[str], suffix: str, relation: bool) -> tuple[str, str]:
        """PostgreSQL's ChooseRelationName/ChooseConstraintName: ``table_cols_suffix``, numbered on collision.

        Returns the name and a note when the catalog could not tell which names were taken.
        """
        schema, relname = split_name(table)
        base = "_".join([relname, *columns, suffix]) if columns else f"{relname}_{suffix}"
        names = self.catalog.schema_names(schema)
        note = "" if names is not None else "-- name as PostgreSQL picks it; taken names not checked\n"
        taken = self.taken.setdefault(schema, set())
        existing = (names.relations if relation else names.constraints) if names else frozenset()
        candidate, n = _truncate_name(base), 0
        while candidate in existing or candidate in taken:
            n += 1
            candidate = _truncate_name(base[: MAX_IDENTIFIER - len(str(n))]) + str(n)
        taken.add(candidate)
        return candidate, note

    # --- inverses -------------------------------------------------------------------------------
    def _undo_create_table(self, op: Operation) -> Inverse:
        what = "MATERIALIZED VIEW" if op.details.get("object") == "materialized view" else "TABLE"
        return _do(f"DROP {what} {op.table};")

    def _undo_create_index(self, op: Operation) -> Inverse:
        assert op.table is not None
        name, note = op.details["index"], ""
        if not name:
            name, note = self.choose_name(op.table, _index_name_parts(op.details["columns"]), "idx", True)
        concurrent = op.details["concurrent"]
        sql = f"DROP INDEX {'CONCURRENTLY ' if concurrent else ''}{_in_schema_of(op.table, name)};"
        return Inverse((Undo(note + sql, outside=concurrent),))

    def _undo_drop_index(self, op: Operation) -> Inverse:
        index, concurrent = op.details["index"], op.details["concurrent"]
        _, name = split_name(index)
        if name in self.created_indexes:
            return Inverse((self.created_indexes[name][1],))  # made earlier in this file: made again alike
        definition = self.catalog.index_definition(index)
        if definition is None:
            return _manual(op, "the index's definition is unknown (target unreachable)")
        if concurrent:
            definition = definition.replace(" INDEX ", " INDEX CONCURRENTLY ", 1)
        return Inverse((Undo(definition + ";", outside=concurrent),))

    def _undo_add_column(self, op: Operation) -> Inverse:
        assert op.table is not None
        self.added_columns.add((op.table, op.details["column"]))
        return _do(f"ALTER TABLE {op.table} DROP COLUMN {quote(op.details['column'])};")

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
        self.added_constraints.add((op.table, name))
        drop = f"{note}ALTER TABLE {op.table} DROP CONSTRAINT {quote(name)};"
        index = d.get("using_index")
        if not index:
            return _do(drop)
        # USING INDEX renames the index to the constraint's name and ties it to it: dropping the
        # constraint drops the index, which must then be there again as it was before
        if index in self.created_indexes:
            self.forget(self.created_indexes.pop(index)[0])
            return _do(drop)
        definition = self.catalog.index_definition(_in_schema_of(op.table, index))
        if definition is None:
            return _manual(
                op, f"index {index} is taken over and its definition is unknown (target unreachable)"
            )
        return _do(drop, definition + ";")

    def _undo_validate_constraint(self, op: Operation) -> Inverse:
        assert op.table is not None
        name = op.details["constraint"]
        if (op.table, name) in self.added_constraints:
            return Inverse()  # its ADD is undone anyway
        definition = self.catalog.constraint_definition(op.table, name)
        if definition is None:
            return _manual(op, "the constraint's definition is unknown (target unreachable)")
        if not definition.endswith(" NOT VALID"):
            return Inverse()  # it was valid already: VALIDATE changed nothing
        # PostgreSQL cannot mark a constraint not valid again: drop it and add it back NOT VALID (instant)
        constraint = quote(name)
        return _do(
            f"ALTER TABLE {op.table} DROP CONSTRAINT {constraint}, ADD CONSTRAINT {constraint} {definition};"
        )

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
        return _do(f"ALTER TABLE {op.table} ALTER COLUMN {quote(op.details['column'])} DROP NOT NULL;")

    def _undo_drop_not_null(self, op: Operation) -> Inverse:
        added, info = self._column_before(op)
        if not added and info is not None and not info.not_null:
            return Inverse()
        return _do(f"ALTER TABLE {op.table} ALTER COLUMN {quote(op.details['column'])} SET NOT NULL;")

    def _undo_default(self, op: Operation) -> Inverse:
        column = quote(op.details["column"])
        added, info = self._column_before(op)
        if added:
            return _do(f"ALTER TABLE {op.table} ALTER COLUMN {column} DROP DEFAULT;")
        if info is None:
            return _manual(op, "previous default unknown (target unreachable)")
        return _do(f"ALTER TABLE {op.table} ALTER COLUMN {column} {_default_sql(info)};")

    def _undo_alter_column_type(self, op: Operation) -> Inverse:
        added, info = self._column_before(op)
        if added:
            return Inverse()  # the column is dropped anyway
        if op.details["using"]:
            return _manual(op, "its USING expression converted the values, and no cast is known to undo it")
        if info is None:
            return _manual(op, "previous type unknown (target unreachable)")
        column, old = quote(op.details["column"]), info.data_type
        # the default is recast with the column: set it back to exactly what it was
        return _do(
            f"-- fails if a value written since no longer fits {old}\n"
            f"ALTER TABLE {op.table} ALTER COLUMN {column} TYPE {old} USING {column}::{old}, "
            f"ALTER COLUMN {column} {_default_sql(info)};"
        )

    def _undo_rename_column(self, op: Operation) -> Inverse:
        d = op.details
        return _do(f"ALTER TABLE {op.table} RENAME COLUMN {quote(d['new_name'])} TO {quote(d['column'])};")

    def _undo_rename_table(self, op: Operation) -> Inverse:
        assert op.table is not None
        _, old = split_name(op.table)
        renamed = _in_schema_of(op.table, op.details["new_name"])
        return _do(f"ALTER TABLE {renamed} RENAME TO {quote(old)};")

    def _undo_rename_index(self, op: Operation) -> Inverse:
        index = op.details["index"]
        _, old = split_name(index)
        return _do(f"ALTER INDEX {_in_schema_of(index, op.details['new_name'])} RENAME TO {quote(old)};")

    def _undo_rename_constraint(self, op: Operation) -> Inverse:
        d = op.details
        return _do(
            f"ALTER TABLE {op.table} RENAME CONSTRAINT {quote(d['new_name'])} TO {quote(d['constraint'])};"
        )

    def _undo_attach_partition(self, op: Operation) -> Inverse:
        return _do(f"ALTER TABLE {op.table} DETACH PARTITION {op.details['partition']};")

    def _replaced(self, op: Operation, kind: str, names: list[str], args: list[str]) -> Inverse | None:
        """Why ``CREATE OR REPLACE`` cannot be undone here, or None when it created a new object."""
        if not op.details["replace"]:
            return None
        info = self.catalog.object_info(kind, names, args)
        if info is None:
            return _manual(op, f"may replace an existing {kind} (target unreachable)")
        if info.exists:
            return _manual(op, "the previous definition is not kept")
        return None

    def _undo_create_view(self, op: Operation) -> Inverse:
        view = op.details["view"]
        schema, name = split_name(view)
        return self._replaced(op, "view", [n for n in (schema, name) if n], []) or _do(f"DROP VIEW {view};")

    def _undo_create_function(self, op: Operation) -> Inverse:
        d = op.details
        return self._replaced(op, "function", d["names"], d["args"]) or _do(
            f"DROP FUNCTION {d['function']}({', '.join(d['args'])});"
        )

    def _undo_create_trigger(self, op: Operation) -> Inverse:
        if op.details["replace"]:
            return _manual(op, "a replaced trigger's definition is not kept")
        return _do(f"DROP TRIGGER {quote(op.details['trigger'])} ON {op.table};")

    def _undo_create_schema(self, op: Operation) -> Inverse:
        return _do(f"DROP SCHEMA {quote(op.details['schema'])};")

    def _undo_create_type(self, op: Operation) -> Inverse:
        return _do(f"DROP TYPE {op.details['type']};")

    def _undo_create_sequence(self, op: Operation) -> Inverse:
        return _do(f"DROP SEQUENCE {op.details['sequence']};")

    def _undo_create_extension(self, op: Operation) -> Inverse:
        return _do(f"DROP EXTENSION {quote(op.details['extension'])};")

    def _undo_comment(self, op: Operation) -> Inverse:
        what, target = op.details["object"], op.details["target"]
        kind = {"column": "table column"}.get(what, what)
        info = self.catalog.object_info(kind, op.details["names"])
        if info is None:
            return _manual(op, "previous comment unknown (target unreachable)")
        return _do(f"COMMENT ON {what.upper()} {target} IS {literal(info.comment)};")

    def _undo_select(self, op: Operation) -> Inverse:
        return (
            _manual(op, "the functions it calls are not analysed") if op.details["functions"] else Inverse()
        )

    def _undo_copy(self, op: Operation) -> Inverse:
        return _manual(op, "the rows it loaded are not known") if op.details["from"] else Inverse()

    def _undo_do(self, op: Operation) -> Inverse:
        return _manual(op, "code the analysis cannot see into")

    # --- order -------------------------------------------------------------------------------------
    def plan(self, op: Operation, line: int, forward_sql: str) -> None:
        method = _INVERSES.get(op.kind)
        inverse = method(self, op) if method else _manual(op)
        if op.kind is Kind.CREATE_INDEX and op.details["index"]:
            again = Undo(forward_sql + ";", outside=op.details["concurrent"])
            self.created_indexes[op.details["index"]] = (len(self.planned), again)
        self.planned.append((op, inverse, line, _first_line(forward_sql)))

    def forget(self, position: int) -> None:
        """An earlier inverse made unnecessary by a later statement (its object goes with another)."""
        op, _, line, forward = self.planned[position]
        self.planned[position] = (op, Inverse(), line, forward)


_INVERSES: dict[Kind, Callable[[_Generator, Operation], Inverse]] = {
    Kind.CREATE_TABLE: _Generator._undo_create_table,
    Kind.CREATE_TABLE_AS: _Generator._undo_create_table,
    Kind.CREATE_INDEX: _Generator._undo_create_index,
    Kind.DROP_INDEX: _Generator._undo_drop_index,
    Kind.ADD_COLUMN: _Generator._undo_add_column,
    Kind.ADD_CONSTRAINT: _Generator._undo_add_constraint,
    Kind.VALIDATE_CONSTRAINT: _Generator._undo_validate_constraint,
    Kind.SET_NOT_NULL: _Generator._undo_set_not_null,
    Kind.DROP_NOT_NULL: _Generator._undo_drop_not_null,
    Kind.SET_DEFAULT: _Generator._undo_default,
    Kind.DROP_DEFAULT: _Generator._undo_default,
    Kind.ALTER_COLUMN_TYPE: _Generator._undo_alter_column_type,
    Kind.RENAME_COLUMN: _Generator._undo_rename_column,
    Kind.RENAME_TABLE: _Generator._undo_rename_table,
    Kind.RENAME_INDEX: _Generator._undo_rename_index,
    Kind.RENAME_CONSTRAINT: _Generator._undo_rename_constraint,
    Kind.ATTACH_PARTITION: _Generator._undo_attach_partition,
    Kind.CREATE_VIEW: _Generator._undo_create_view,
    Kind.CREATE_FUNCTION: _Generator._undo_create_function,
    Kind.CREATE_TRIGGER: _Generator._undo_create_trigger,
    Kind.CREATE_SCHEMA: _Generator._undo_create_schema,
    Kind.CREATE_TYPE: _Generator._undo_create_type,
    Kind.CREATE_SEQUENCE: _Generator._undo_create_sequence,
    Kind.CREATE_EXTENSION: _Generator._undo_create_extension,
    Kind.COMMENT: _Generator._undo_comment,
    Kind.SELECT: _Generator._undo_select,
    Kind.COPY: _Generator._undo_copy,
    Kind.DO: _Generator._undo_do,
}


def _default_sql(info: ColumnInfo) -> str:
    return f"SET DEFAULT {info.default}" if info.default is not None else "DROP DEFAULT"


def _index_name_parts(columns: list[str]) -> list[str]:
    """PostgreSQL names an expression's part of an index "expr"."""
    return [c if c.replace("_", "").isalnum() else "expr" for c in columns]


def _first_line(sql: str) -> str:
    text = sql.strip()
    line = text.splitlines()[0] if text else ""
    line = text if line == text else line  # a one-line statement's own text, not a copy kept till the end
    return line if len(line) <= 100 else line[:99] + "…"


class RollbackBuilder:
    """A generated rollback built statement by statement, as the analysis reads them: planning a file never
    holds all its parse trees at once (see ``bot.drafting``)."""

    def __init__(self, catalog: Catalog) -> None:
        self._generator = _Generator(catalog)

    def add(self, item: ParsedStatement) -> None:
        for op in item.operations:
            if op.kind not in NOTHING_TO_UNDO:
                self._generator.plan(op, item.statement.line, item.statement.sql)

    def build(self, lock_timeout: str = "5s") -> Rollback:
        """Undo the statements added in exact reverse order: runs of transactional steps in one transaction
        each."""
        steps: list[RollbackStep] = []
        lines = ["-- Rollback generated by migrate-bot: the inverse of each statement, newest first."]
        in_block = False
        setting = (
            f"SET LOCAL lock_timeout = {literal(lock_timeout)};"  # printed once: pglast's printer is slow
        )
        for op, inverse, line, forward in reversed(self._generator.planned):
            if inverse.reason:
                steps.append(RollbackStep(op.statement_index, None, inverse.reason))
                lines += ["", f"-- MANUAL: L{line} {inverse.reason}"]
            for undo in inverse.undo:
                in_block = _switch(lines, in_block, undo.outside, setting)
                label = " (cannot run inside a transaction)" if undo.outside else ""
                lines += ["", f"-- undo L{line}{label}: {forward}", undo.sql]
                steps.append(RollbackStep(op.statement_index, undo.sql, None, undo.outside))
        if not any(step.sql for step in steps):  # still a script that runs: an empty transaction
            in_block = _switch(lines, in_block, False, setting)
        if in_block:
            lines += ["", "COMMIT;"]
        lines.append("")  # the last newline: joined in, not added to a copy of a text that may be 45 MB
        return Rollback(source="generated", sql="\n".join(lines), steps=steps)


def generate_rollback(
    parsed: Iterable[ParsedStatement], *, catalog: Catalog, lock_timeout: str = "5s"
) -> Rollback:
    """Undo ``parsed`` in exact reverse order: runs of transactional steps in one transaction each."""
    builder = RollbackBuilder(catalog)
    for item in parsed:
        builder.add(item)
    return builder.build(lock_timeout)


def _switch(lines: list[str], in_block: bool, outside: bool, setting: str) -> bool:
    """Close the open transaction before a statement that runs outside one, open one (with ``setting``, the
    lock_timeout) before one that runs inside; returns whether a transaction is open after."""
    if in_block and outside:
        lines += ["", "COMMIT;"]
        return False
    if not in_block and not outside:
        lines += ["", "BEGIN;", setting]
        return True
    return in_block
