"""After the migration: is every object it creates or changes there, as the analysis said it would be?

The operations are replayed in order over a list of expectations (a column added then renamed is
expected under its new name, a constraint added then dropped not at all), and each expectation is read
from the target's catalog. Every index on the tables the migration touched must be valid. Operations
this module cannot check come back NOT_CHECKED, one check each: never silently passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from bot.execution.checks import Check, Outcome
from bot.execution.integrity import INVALID_HELP, invalid_indexes
from bot.execution.target import connected, scalar
from bot.sql.model import Operation
from bot.sql.rollback import split_name

# Operations that change nothing a catalog could show.
NOTHING_TO_VERIFY = frozenset(
    {"set_setting", "transaction", "lock_table", "analyze", "vacuum", "vacuum_full", "cluster", "reindex"}
)
CONTYPES = {"foreign key": "f", "check": "c", "unique": "u", "primary key": "p", "exclusion": "x"}

REL = (
    "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %(schema)s AND c.relname = %(name)s"
)
ATTRIBUTE = (
    f"FROM pg_attribute WHERE attrelid = ({REL}) AND attname = %(sub)s AND attnum > 0 AND NOT attisdropped"
)
CONSTRAINT = f"FROM pg_constraint WHERE conrelid = ({REL}) AND conname = %(sub)s"
CONSTRAINT_COLUMNS = (
    "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord) "
    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord)"
)
INDEX_COLUMNS = (
    "ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k)"
)


@dataclass(frozen=True)
class _Kind:
    """One kind of expectation: a query answering it from the key's parts, and the words for it."""

    query: str
    noun: str  # formatted with the key's parts: schema, name, sub, extra
    yes: str = "exists"  # what the answer True means
    no: str = "does not exist"


def _exists(relkinds: str) -> str:
    return f"SELECT EXISTS ({REL} AND c.relkind IN ({relkinds}))"


KINDS = {
    "table": _Kind(_exists("'r', 'p', 'f'"), "table {schema}.{name}"),
    "view": _Kind(_exists("'v', 'm'"), "view {schema}.{name}"),
    "sequence": _Kind(_exists("'S'"), "sequence {schema}.{name}"),
    "index": _Kind(_exists("'i', 'I'"), "index {schema}.{name}"),
    "column": _Kind(f"SELECT EXISTS (SELECT 1 {ATTRIBUTE})", "column {schema}.{name}.{sub}"),
    "not_null": _Kind(
        f"SELECT attnotnull {ATTRIBUTE}", "column {schema}.{name}.{sub}", "is NOT NULL", "allows NULL"
    ),
    "default": _Kind(
        f"SELECT atthasdef {ATTRIBUTE}", "column {schema}.{name}.{sub}", "has a default", "has none"
    ),
    "column_type": _Kind(
        f"SELECT (SELECT atttypid {ATTRIBUTE}) = to_regtype(%(extra)s)",
        "column {schema}.{name}.{sub}",
        "is of type {extra}",
        "is not of type {extra}",
    ),
    "constraint": _Kind(f"SELECT EXISTS (SELECT 1 {CONSTRAINT})", "constraint {sub} on {schema}.{name}"),
    "validated": _Kind(
        f"SELECT convalidated {CONSTRAINT}",
        "constraint {sub} on {schema}.{name}",
        "is validated",
        "is NOT VALID",
    ),
    "unnamed_constraint": _Kind(
        f"SELECT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = ({REL}) "
        "AND c.contype = %(contype)s "
        f"AND (cardinality(%(extra)s::text[]) = 0 OR {CONSTRAINT_COLUMNS} = %(extra)s::text[]))",
        "a {sub} constraint on {schema}.{name} ({extra})",
    ),
    "unnamed_index": _Kind(
        f"SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = ({REL}) "
        f"AND {INDEX_COLUMNS} = %(extra)s::text[])",
        "an index on {schema}.{name} ({extra})",
    ),
    "trigger": _Kind(
        f"SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = ({REL}) AND tgname = %(sub)s "
        "AND NOT tgisinternal)",
        "trigger {sub} on {schema}.{name}",
    ),
    "function": _Kind(
        "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %(schema)s AND p.proname = %(name)s)",
        "function {schema}.{name}",
    ),
    "type": _Kind(
        "SELECT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = %(schema)s AND t.typname = %(name)s)",
        "type {schema}.{name}",
    ),
    "schema": _Kind("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %(name)s)", "schema {name}"),
    "extension": _Kind(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = %(name)s)", "extension {name}"
    ),
}
# Kinds keyed by a table: they follow it when it is renamed, and go with it when it is dropped.
ON_TABLE = frozenset({"table", "column", "not_null", "default", "column_type", "constraint", "validated",
                      "unnamed_constraint", "unnamed_index", "trigger"})  # fmt: skip
# Kinds keyed by a column (``sub``): they follow it when it is renamed, and go with it when it is dropped.
ON_COLUMN = frozenset({"column", "not_null", "default", "column_type"})
ON_CONSTRAINT = frozenset({"constraint", "validated"})


@dataclass(frozen=True)
class _Key:
    kind: str
    schema: str | None
    name: str
    sub: str | None = None
    extra: str | tuple[str, ...] | None = None

    def params(self) -> dict[str, object]:
        extra = list(self.extra) if isinstance(self.extra, tuple) else self.extra
        return {**vars(self), "extra": extra, "contype": CONTYPES.get(self.sub or "")}

    def noun(self) -> str:
        return KINDS[self.kind].noun.format(**{**vars(self), "extra": self._extra()})

    def state(self, answer: bool | None) -> str:
        """What ``answer`` means: "exists", "is NOT VALID" …; None: the object it is about is missing."""
        if answer is None:
            return "cannot be read (its table or column does not exist)"
        kind = KINDS[self.kind]
        return (kind.yes if answer else kind.no).format(extra=self._extra())

    def _extra(self) -> str | None:
        return ", ".join(self.extra) if isinstance(self.extra, tuple) else self.extra


# Operations on one named object outside a table: (kind, the detail naming it, whether it then exists).
OBJECTS = {
    "create_view": ("view", "view", True),
    "drop_view": ("view", "view", False),
    "create_function": ("function", "function", True),
    "create_type": ("type", "type", True),
    "create_sequence": ("sequence", "sequence", True),
}
# Operations that decide one fact of a table: (kind, the detail naming its part, the answer after them).
TABLE_FACTS = {
    "add_column": ("column", "column", True),
    "set_not_null": ("not_null", "column", True),
    "drop_not_null": ("not_null", "column", False),
    "set_default": ("default", "column", True),
    "drop_default": ("default", "column", False),
    "validate_constraint": ("validated", "constraint", True),
    "create_trigger": ("trigger", "trigger", True),
    "drop_trigger": ("trigger", "trigger", False),
}
# Operations that drop or rename a part of a table, and what else is expected of that part.
PARTS = {"column": ON_COLUMN, "constraint": ON_CONSTRAINT}


class _Expectations:
    """What the target should look like after the operations replayed so far: {key: (answer, operation)}."""

    def __init__(self, current_schema: str) -> None:
        self.current_schema = current_schema  # where an unqualified name was created or found
        self.wanted: dict[_Key, tuple[bool, Operation]] = {}
        self.tables: dict[tuple[str, str], None] = {}  # touched tables in order, under their latest names
        self.unchecked: list[Operation] = []

    def replay(self, op: Operation) -> None:
        if op.kind in OBJECTS:
            kind, detail, answer = OBJECTS[op.kind]
            self.want(_Key(kind, *self.name(op.details[detail])), answer, op)
        elif op.kind in TABLE_FACTS:
            kind, detail, answer = TABLE_FACTS[op.kind]
            self.want(_Key(kind, *self.table(op), op.details[detail]), answer, op)
        elif op.kind in ("drop_column", "drop_constraint"):
            self._gone(op, op.kind.removeprefix("drop_"))
        elif op.kind in ("rename_column", "rename_constraint"):
            self._renamed(op, op.kind.removeprefix("rename_"))
        elif handler := getattr(self, f"_{op.kind}", None):
            handler(op)
        elif op.kind not in NOTHING_TO_VERIFY:
            self.unchecked.append(op)
        if op.table and op.kind not in ("drop_table", "rename_table"):
            self.tables.setdefault(self.name(op.table))

    def name(self, qualified: str) -> tuple[str, str]:
        """(schema, name) of a name as the analysis wrote it."""
        schema, name = split_name(qualified)
        return schema or self.current_schema, name

    def table(self, op: Operation) -> tuple[str, str]:
        assert op.table is not None
        return self.name(op.table)

    def want(self, key: _Key, answer: bool, op: Operation) -> None:
        self.wanted.pop(key, None)  # the latest operation decides, and stands in its place in the order
        self.wanted[key] = (answer, op)

    def forget(self, gone: Callable[[_Key], bool]) -> None:
        self.wanted = {key: value for key, value in self.wanted.items() if not gone(key)}

    def rename(self, renamed: Callable[[_Key], bool], **changes: str) -> None:
        self.wanted = {
            (_Key(**{**vars(key), **changes}) if renamed(key) else key): value
            for key, value in self.wanted.items()
        }

    # --- tables and columns ----------------------------------------------------------------------
    def _create_table(self, op: Operation) -> None:
        schema, name = self.table(op)
        self.want(_Key("table", schema, name), True, op)
        for column in op.details["columns"]:
            self.want(_Key("column", schema, name, column["column"]), True, op)

    def _drop_table(self, op: Operation) -> None:
        table = self.table(op)
        self.tables.pop(table, None)
        self.forget(lambda k: k.kind in ON_TABLE and (k.schema, k.name) == table)
        self.want(_Key("table", *table), False, op)

    def _rename_table(self, op: Operation) -> None:
        table = self.table(op)
        renamed = (table[0], op.details["new_name"])
        self.tables = {(renamed if t == table else t): None for t in self.tables}
        self.tables.setdefault(renamed)
        self.rename(lambda k: k.kind in ON_TABLE and (k.schema, k.name) == table, name=renamed[1])
        self.want(_Key("table", *table), False, op)
        self.want(_Key("table", *renamed), True, op)

    def _alter_column_type(self, op: Operation) -> None:
        self.want(_Key("column_type", *self.table(op), op.details["column"], op.details["type"]), True, op)

    def _gone(self, op: Operation, kind: str) -> None:
        """A column or constraint dropped: gone, with every fact expected of it."""
        part = (*self.table(op), op.details[kind])
        self.forget(lambda k: k.kind in PARTS[kind] and (k.schema, k.name, k.sub) == part)
        self.want(_Key(kind, *part), False, op)

    def _renamed(self, op: Operation, kind: str) -> None:
        """A column or constraint renamed: every fact expected of it now holds under the new name."""
        part = (*self.table(op), op.details[kind])
        new = op.details["new_name"]
        self.rename(lambda k: k.kind in PARTS[kind] and (k.schema, k.name, k.sub) == part, sub=new)
        self.want(_Key(kind, *part), False, op)
        self.want(_Key(kind, *part[:2], new), True, op)

    # --- constraints, indexes, triggers ----------------------------------------------------------
    def _add_constraint(self, op: Operation) -> None:
        d = op.details
        if d["constraint"]:
            self.want(_Key("constraint", *self.table(op), d["constraint"]), True, op)
            self.want(_Key("validated", *self.table(op), d["constraint"]), not d["not_valid"], op)
        else:
            columns = tuple(d["columns"] or d.get("check_columns") or ())
            kind = d["constraint_type"].replace("_", " ")
            self.want(_Key("unnamed_constraint", *self.table(op), kind, columns), True, op)

    def _create_index(self, op: Operation) -> None:
        schema, name = self.table(op)
        if op.details["index"]:
            self.want(_Key("index", schema, op.details["index"]), True, op)
        else:
            self.want(_Key("unnamed_index", schema, name, extra=tuple(op.details["columns"])), True, op)

    def _drop_index(self, op: Operation) -> None:
        self.want(_Key("index", *self.name(op.details["index"])), False, op)

    def _rename_index(self, op: Operation) -> None:
        schema, old = self.name(op.details["index"])
        self.want(_Key("index", schema, old), False, op)
        self.want(_Key("index", schema, op.details["new_name"]), True, op)

    def _create_schema(self, op: Operation) -> None:
        self.want(_Key("schema", None, op.details["schema"]), True, op)

    def _create_extension(self, op: Operation) -> None:
        self.want(_Key("extension", None, op.details["extension"]), True, op)


def verify_migration(dsn: str, operations: Sequence[Operation]) -> list[Check]:
    """One check per object the operations leave created, changed or gone (PASSED or FAILED), one per
    touched table that its indexes are all valid, and one NOT_CHECKED per operation it cannot read back."""
    with connected(dsn) as conn:
        expected = _Expectations(scalar(conn, "SELECT current_schema()"))
        for op in operations:
            expected.replay(op)
        checks = []
        for key, (want, op) in expected.wanted.items():
            answer = scalar(conn, KINDS[key.kind].query, key.params())
            if answer == want:
                checks.append(
                    Check(key.kind, key.noun(), Outcome.PASSED, f"{key.noun()} {key.state(answer)}")
                )
            else:
                sentence = (
                    f"{key.noun()} {key.state(answer)} (expected: {key.state(want)}, after “{op.summary}”)"
                )
                checks.append(Check(key.kind, key.noun(), Outcome.FAILED, sentence))
        checks += [_indexes_valid(conn, *table) for table in expected.tables]
        checks += [
            Check("operation", op.summary, Outcome.NOT_CHECKED, f"not checked: {op.summary} ({op.kind})")
            for op in expected.unchecked
        ]
    return checks


def _indexes_valid(conn: psycopg.Connection, schema: str, name: str) -> Check:
    table = f"{schema}.{name}"
    subject = f"indexes of {table}"
    row = conn.execute(REL, {"schema": schema, "name": name}).fetchone()
    if row is None:
        return Check("index_valid", subject, Outcome.NOT_CHECKED, f"{subject} not checked: no such table")
    invalid = [index for index, _ in invalid_indexes(conn, tables=[str(row[0])])]
    if invalid:
        sentence = f"INVALID on {table}: {', '.join(invalid)}; {INVALID_HELP}"
        return Check("index_valid", subject, Outcome.FAILED, sentence)
    return Check("index_valid", subject, Outcome.PASSED, f"every index on {table} is valid")
