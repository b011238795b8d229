"""What each statement does: pglast parse trees mapped to Operations with the lock PostgreSQL takes.

Lock levels follow PostgreSQL's "Explicit Locking" and ALTER TABLE documentation; tests/sql/test_locks.py
checks them against ``pg_locks`` on a real server. A multi-command ALTER TABLE yields one Operation per
command, all with the same statement index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType, TransactionStmtKind
from pglast.stream import RawStream, maybe_double_quote_name

from bot.sql.model import LockLevel, Operation

L = LockLevel
AT = AlterTableType

# Functions whose value differs per row: a column default calling one rewrites the table (even on 11+).
VOLATILE_FUNCTIONS = frozenset(
    {
        "random",
        "clock_timestamp",
        "timeofday",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "nextval",
        "txid_current",
        "setseed",
    }
)
# Non-volatile functions commonly used as defaults (STABLE or IMMUTABLE): a fast default on 11+.
STABLE_FUNCTIONS = frozenset(
    {"now", "current_timestamp", "transaction_timestamp", "statement_timestamp", "lower", "upper", "coalesce"}
)
SERIAL_TYPES = frozenset({"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"})


def sql_of(node: ast.Node) -> str:
    """A node printed back as SQL, quoted where PostgreSQL needs it."""
    return str(RawStream()(node))


_TYPE_SQL: dict[tuple[object, ...], str] = {}


def type_name(node: ast.TypeName) -> str:
    """A type as SQL prints it; cached, since a migration names the same few types over and over."""
    mods = tuple(getattr(getattr(m, "val", None), "ival", m) for m in node.typmods or ())
    if any(isinstance(m, ast.Node) for m in mods):
        return sql_of(node)  # an expression modifier: rare, not worth a key
    key = (tuple(_names(node.names)), mods, len(node.arrayBounds or ()), node.setof, node.pct_type)
    if key not in _TYPE_SQL:
        _TYPE_SQL[key] = sql_of(node)
    return _TYPE_SQL[key]


def table_name(rv: ast.RangeVar) -> str:
    """``schema.table`` as SQL would write it, quoted where needed."""
    return ".".join(maybe_double_quote_name(part) for part in (rv.schemaname, rv.relname) if part)


def _names(items: Any) -> list[str]:
    return [item.sval for item in items or () if isinstance(item, ast.String)]


def qualified(names: list[str]) -> str:
    return ".".join(names)


def default_kind(expr: ast.Node | None) -> str:
    """``none``, ``constant``, ``volatile`` or ``unknown`` (a function not classified without a catalog)."""
    if expr is None:
        return "none"
    kinds = set()
    for node in walk(expr):
        if isinstance(node, ast.FuncCall):
            name = _names(node.funcname)[-1].lower()
            if name in VOLATILE_FUNCTIONS:
                kinds.add("volatile")
            elif name not in STABLE_FUNCTIONS:
                kinds.add("unknown")
    if "volatile" in kinds:
        return "volatile"
    return "unknown" if kinds else "constant"


def _column_facts(col: ast.ColumnDef) -> dict[str, Any]:
    """NOT NULL, default and inline constraints of a column definition."""
    type_names = _names(col.typeName.names) if col.typeName else []
    facts: dict[str, Any] = {
        "column": col.colname,
        "type": type_name(col.typeName) if col.typeName else None,
        "not_null": bool(col.is_not_null),
        "default": "none",
        "identity": False,
        "generated": False,
        "references": None,
        "unique": False,
        "primary_key": False,
        "check": False,
    }
    if type_names and type_names[-1].lower() in SERIAL_TYPES:
        facts["default"], facts["not_null"] = "volatile", True
    for con in col.constraints or ():
        kind = con.contype
        if kind == ConstrType.CONSTR_NOTNULL:
            facts["not_null"] = True
        elif kind == ConstrType.CONSTR_DEFAULT:
            facts["default"] = default_kind(con.raw_expr)
        elif kind == ConstrType.CONSTR_IDENTITY:
            facts["identity"], facts["not_null"] = True, True
        elif kind == ConstrType.CONSTR_GENERATED:
            facts["generated"] = True
        elif kind == ConstrType.CONSTR_PRIMARY:
            facts["primary_key"], facts["not_null"] = True, True
        elif kind == ConstrType.CONSTR_UNIQUE:
            facts["unique"] = True
        elif kind == ConstrType.CONSTR_CHECK:
            facts["check"] = True
        elif kind == ConstrType.CONSTR_FOREIGN:
            facts["references"] = table_name(con.pktable)
    return facts


def constraint_facts(con: ast.Constraint) -> dict[str, Any]:
    kind = {
        ConstrType.CONSTR_FOREIGN: "foreign_key",
        ConstrType.CONSTR_CHECK: "check",
        ConstrType.CONSTR_UNIQUE: "unique",
        ConstrType.CONSTR_PRIMARY: "primary_key",
        ConstrType.CONSTR_EXCLUSION: "exclusion",
        ConstrType.CONSTR_NOTNULL: "not_null",
    }.get(con.contype, "other")
    facts: dict[str, Any] = {
        "constraint": con.conname,
        "constraint_type": kind,
        "not_valid": bool(con.skip_validation),
        "using_index": con.indexname,
        "columns": _names(con.keys) or _names(con.fk_attrs),
    }
    if kind == "foreign_key":
        facts["references"] = table_name(con.pktable)
        facts["columns"] = _names(con.fk_attrs)
    if kind == "check":
        # PostgreSQL names an unnamed check after its column only when it references exactly one
        referenced = sorted(_column_refs(con.raw_expr))
        facts["check_columns"] = referenced if len(referenced) == 1 else []
        expr = con.raw_expr
        is_not_null = isinstance(expr, ast.NullTest) and expr.nulltesttype == NullTestType.IS_NOT_NULL
        facts["not_null_column"] = (
            referenced[0] if is_not_null and isinstance(expr.arg, ast.ColumnRef) else None
        )
    return facts


def _column_refs(node: ast.Node | None) -> set[str]:
    return {_names(n.fields)[-1] for n in walk(node) if isinstance(n, ast.ColumnRef)}


def walk(node: Any) -> Iterator[ast.Node]:
    """Every node of a parse tree, depth first."""
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from walk(getattr(node, attr))
    elif isinstance(node, tuple):
        for item in node:
            yield from walk(item)


# ALTER TABLE commands described by their name alone: kind, summary, detail key, lock, scans the table
SIMPLE_ALTERS: dict[AlterTableType, tuple[str, str, str, LockLevel, bool]] = {
    AT.AT_DropColumn: ("drop_column", "drop column {table}.{name}", "column", L.ACCESS_EXCLUSIVE, False),
    AT.AT_SetNotNull: ("set_not_null", "set NOT NULL on {table}.{name}", "column", L.ACCESS_EXCLUSIVE, True),
    AT.AT_DropNotNull: (
        "drop_not_null",
        "drop NOT NULL on {table}.{name}",
        "column",
        L.ACCESS_EXCLUSIVE,
        False,
    ),
    AT.AT_ValidateConstraint: (
        "validate_constraint",
        "validate constraint {name} on {table}",
        "constraint",
        L.SHARE_UPDATE_EXCLUSIVE,
        True,
    ),
    AT.AT_DropConstraint: (
        "drop_constraint",
        "drop constraint {name} on {table}",
        "constraint",
        L.ACCESS_EXCLUSIVE,
        False,
    ),
}


class OperationMapper:
    """Maps one statement to its operations; ``index`` is the statement's position in the file."""

    def __init__(self, index: int) -> None:
        self.index = index

    def op(self, kind: str, summary: str, **kw: Any) -> Operation:
        return Operation(statement_index=self.index, kind=kind, summary=summary, **kw)

    def map(self, node: ast.Node) -> list[Operation]:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            name = type(node).__name__.removesuffix("Stmt")
            return [
                self.op("other", f"{name} statement (not analysed)", details={"node": type(node).__name__})
            ]
        result = method(node)
        return result if isinstance(result, list) else [result]

    # --- tables -------------------------------------------------------------------------------------
    def _CreateStmt(self, n: ast.CreateStmt) -> list[Operation]:
        table = table_name(n.relation)
        columns = [_column_facts(c) for c in n.tableElts or () if isinstance(c, ast.ColumnDef)]
        ops = [
            self.op(
                "create_table",
                f"create table {table}",
                table=table,
                details={"columns": columns, "if_not_exists": bool(n.if_not_exists)},
            )
        ]
        for col in columns:
            if col["references"]:
                ops.append(
                    self._foreign_key(table, [col["column"]], col["references"], None, False, inline=True)
                )
        for con in n.tableElts or ():
            if isinstance(con, ast.Constraint) and con.contype == ConstrType.CONSTR_FOREIGN:
                facts = constraint_facts(con)
                ops.append(
                    self._foreign_key(
                        table, facts["columns"], facts["references"], con.conname, False, inline=True
                    )
                )
        return ops

    def _foreign_key(
        self,
        table: str,
        columns: list[str],
        references: str,
        name: str | None,
        not_valid: bool,
        *,
        inline: bool,
    ) -> Operation:
        return self.op(
            "add_constraint",
            f"foreign key {table} ({', '.join(columns)}) → {references}",
            table=table,
            lock=L.SHARE_ROW_EXCLUSIVE,
            scans_table=not not_valid and not inline,
            details={
                "constraint": name,
                "constraint_type": "foreign_key",
                "columns": columns,
                "references": references,
                "not_valid": not_valid,
                "inline": inline,
            },
        )

    def _AlterTableStmt(self, n: ast.AlterTableStmt) -> list[Operation]:
        table = table_name(n.relation)
        if n.objtype == ObjectType.OBJECT_INDEX:
            return [self.op("other", f"alter index {table}", lock=L.SHARE_UPDATE_EXCLUSIVE)]
        return [self._alter_cmd(table, cmd) for cmd in n.cmds or ()]

    def _alter_cmd(self, table: str, cmd: ast.AlterTableCmd) -> Operation:
        sub, col = cmd.subtype, cmd.name
        if sub in SIMPLE_ALTERS:
            kind, template, detail, lock, scans = SIMPLE_ALTERS[sub]
            return self.op(
                kind,
                template.format(table=table, name=col),
                table=table,
                lock=lock,
                scans_table=scans,
                details={detail: col},
            )
        if sub == AT.AT_AddColumn:
            facts = _column_facts(cmd.def_)
            rewrites = facts["default"] == "volatile" or facts["identity"] or facts["generated"]
            return self.op(
                "add_column",
                f"add column {table}.{facts['column']} {facts['type']}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
                rewrites_table=rewrites,
                details=facts,
            )
        if sub == AT.AT_AlterColumnType:
            new_type = type_name(cmd.def_.typeName)
            return self.op(
                "alter_column_type",
                f"change type of {table}.{col} to {new_type}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
                rewrites_table=True,
                details={"column": col, "type": new_type, "using": bool(cmd.def_.raw_default)},
            )
        if sub == AT.AT_ColumnDefault:
            if cmd.def_ is None:
                return self.op(
                    "drop_default",
                    f"drop default of {table}.{col}",
                    table=table,
                    lock=L.ACCESS_EXCLUSIVE,
                    details={"column": col},
                )
            return self.op(
                "set_default",
                f"set default of {table}.{col} to {sql_of(cmd.def_)}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
                details={"column": col, "default": sql_of(cmd.def_)},
            )
        if sub == AT.AT_AddConstraint:
            return self._add_constraint(table, cmd.def_)
        name = AT(sub).name.removeprefix("AT_")
        return self.op(
            "other",
            f"alter table {table}: {name}",
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            details={"subcommand": name},
        )

    def _add_constraint(self, table: str, con: ast.Constraint) -> Operation:
        facts = constraint_facts(con)
        kind, name = facts["constraint_type"], con.conname or "unnamed"
        if kind == "foreign_key":
            return self._foreign_key(
                table, facts["columns"], facts["references"], con.conname, facts["not_valid"], inline=False
            )
        builds_index = kind in {"unique", "primary_key", "exclusion"} and not facts["using_index"]
        label = {"primary_key": "primary key", "check": "CHECK", "unique": "UNIQUE"}.get(kind, kind)
        return self.op(
            "add_constraint",
            f"add {label} constraint {name} on {table}" + (" NOT VALID" if facts["not_valid"] else ""),
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            scans_table=(kind == "check" and not facts["not_valid"]) or builds_index,
            details=facts,
        )

    def _RenameStmt(self, n: ast.RenameStmt) -> Operation:
        kind = n.renameType
        target = table_name(n.relation) if n.relation else qualified(_names(n.object))
        if kind == ObjectType.OBJECT_COLUMN:
            return self.op(
                "rename_column",
                f"rename column {target}.{n.subname} to {n.newname}",
                table=target,
                lock=L.ACCESS_EXCLUSIVE,
                details={"column": n.subname, "new_name": n.newname},
            )
        if kind == ObjectType.OBJECT_TABLE:
            return self.op(
                "rename_table",
                f"rename table {target} to {n.newname}",
                table=target,
                lock=L.ACCESS_EXCLUSIVE,
                details={"new_name": n.newname},
            )
        if kind == ObjectType.OBJECT_INDEX:
            return self.op(
                "rename_index",
                f"rename index {target} to {n.newname}",
                lock=L.SHARE_UPDATE_EXCLUSIVE,
                details={"index": target, "new_name": n.newname},
            )
        if kind == ObjectType.OBJECT_TABCONSTRAINT:
            return self.op(
                "rename_constraint",
                f"rename constraint {n.subname} on {target} to {n.newname}",
                table=target,
                lock=L.ACCESS_EXCLUSIVE,
                details={"constraint": n.subname, "new_name": n.newname},
            )
        what = ObjectType(kind).name.removeprefix("OBJECT_").lower()
        return self.op("other", f"rename {what} {target} to {n.newname}", details={"object": what})

    def _DropStmt(self, n: ast.DropStmt) -> list[Operation]:
        kind = n.removeType
        ops = []
        for obj in n.objects or ():
            names = _names(obj) if isinstance(obj, tuple) else [sql_of(obj)]
            name = qualified(names)
            if kind == ObjectType.OBJECT_TABLE:
                ops.append(self.op("drop_table", f"drop table {name}", table=name, lock=L.ACCESS_EXCLUSIVE))
            elif kind == ObjectType.OBJECT_INDEX:
                concurrent = bool(n.concurrent)
                ops.append(
                    self.op(
                        "drop_index",
                        f"drop index {name}" + (" concurrently" if concurrent else ""),
                        lock=L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.ACCESS_EXCLUSIVE,
                        transactional=not concurrent,
                        details={"index": name, "concurrent": concurrent},
                    )
                )
            elif kind in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
                ops.append(self.op("drop_view", f"drop view {name}", details={"view": name}))
            elif kind in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE):
                ops.append(
                    self.op("drop_function", f"drop function {sql_of(obj)}", details={"function": name})
                )
            elif kind == ObjectType.OBJECT_TRIGGER:
                table = qualified(names[:-1])
                ops.append(
                    self.op(
                        "drop_trigger",
                        f"drop trigger {names[-1]} on {table}",
                        table=table,
                        lock=L.ACCESS_EXCLUSIVE,
                        details={"trigger": names[-1]},
                    )
                )
            else:
                what = ObjectType(kind).name.removeprefix("OBJECT_").lower()
                ops.append(self.op("other", f"drop {what} {name}", details={"object": what}))
        return ops

    # --- indexes and maintenance -----------------------------------------------------------------------
    def _IndexStmt(self, n: ast.IndexStmt) -> Operation:
        table = table_name(n.relation)
        columns = [p.name or sql_of(p.expr) for p in n.indexParams or ()]
        shown = ", ".join(sql_of(p) for p in n.indexParams or ())  # with DESC, opclass, collation
        concurrent = bool(n.concurrent)
        unique = "unique " if n.unique else ""
        return self.op(
            "create_index",
            f"create {unique}index {n.idxname or '(unnamed)'} on {table} ({shown})"
            + (" concurrently" if concurrent else ""),
            table=table,
            lock=L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.SHARE,
            scans_table=True,
            transactional=not concurrent,
            details={
                "index": n.idxname,
                "columns": columns,
                "concurrent": concurrent,
                "unique": bool(n.unique),
                "partial": n.whereClause is not None,
            },
        )

    def _VacuumStmt(self, n: ast.VacuumStmt) -> list[Operation]:
        options = {o.defname for o in n.options or ()}
        tables = [table_name(r.relation) for r in n.rels or () if r.relation]
        if not n.is_vacuumcmd:
            return [
                self.op("analyze", f"analyze {t}", table=t, lock=L.SHARE_UPDATE_EXCLUSIVE) for t in tables
            ] or [self.op("analyze", "analyze every table")]
        full = "full" in options
        kind = "vacuum_full" if full else "vacuum"
        lock = L.ACCESS_EXCLUSIVE if full else L.SHARE_UPDATE_EXCLUSIVE
        label = "vacuum full" if full else "vacuum"
        return [
            self.op(kind, f"{label} {t}", table=t, lock=lock, rewrites_table=full, transactional=False)
            for t in tables
        ] or [self.op(kind, f"{label} every table", lock=lock, rewrites_table=full, transactional=False)]

    def _ClusterStmt(self, n: ast.ClusterStmt) -> Operation:
        table = table_name(n.relation) if n.relation else None
        return self.op(
            "cluster",
            f"cluster {table or 'every clustered table'}",
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            rewrites_table=True,
        )

    def _ReindexStmt(self, n: ast.ReindexStmt) -> Operation:
        concurrent = any(p.defname == "concurrently" for p in n.params or ())
        target = table_name(n.relation) if n.relation else n.name
        on_table = n.relation is not None and "TABLE" in str(n.kind)
        return self.op(
            "reindex",
            f"reindex {target}" + (" concurrently" if concurrent else ""),
            table=target if on_table else None,
            lock=L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.SHARE,
            transactional=not concurrent,
            details={"concurrent": concurrent},
        )

    def _LockStmt(self, n: ast.LockStmt) -> list[Operation]:
        mode = list(LockLevel)[n.mode]
        return [
            self.op(
                "lock_table",
                f"lock table {table_name(r)} in {mode.value} mode",
                table=table_name(r),
                lock=mode,
                details={"mode": mode.value},
            )
            for r in n.relations
        ]

    def _TruncateStmt(self, n: ast.TruncateStmt) -> list[Operation]:
        return [
            self.op("truncate", f"truncate {table_name(r)}", table=table_name(r), lock=L.ACCESS_EXCLUSIVE)
            for r in n.relations
        ]

    # --- data ---------------------------------------------------------------------------------------
    def _data_change(self, kind: str, verb: str, n: ast.UpdateStmt | ast.DeleteStmt) -> Operation:
        table = table_name(n.relation)
        where = n.whereClause is not None
        return self.op(
            kind,
            f"{verb} {table}" + ("" if where else " (every row)"),
            table=table,
            lock=L.ROW_EXCLUSIVE,
            details={"where": where},
        )

    def _UpdateStmt(self, n: ast.UpdateStmt) -> Operation:
        return self._data_change("update", "update", n)

    def _DeleteStmt(self, n: ast.DeleteStmt) -> Operation:
        return self._data_change("delete", "delete from", n)

    def _InsertStmt(self, n: ast.InsertStmt) -> Operation:
        table = table_name(n.relation)
        return self.op("insert", f"insert into {table}", table=table, lock=L.ROW_EXCLUSIVE)

    # --- other objects ------------------------------------------------------------------------------
    def _ViewStmt(self, n: ast.ViewStmt) -> Operation:
        view = table_name(n.view)
        return self.op(
            "create_view",
            f"{'create or replace' if n.replace else 'create'} view {view}",
            details={"view": view, "replace": bool(n.replace)},
        )

    def _CreateFunctionStmt(self, n: ast.CreateFunctionStmt) -> Operation:
        name = qualified(_names(n.funcname))
        args = [type_name(p.argType) for p in n.parameters or () if str(p.mode) != "FUNC_PARAM_TABLE"]
        what = "procedure" if n.is_procedure else "function"
        return self.op(
            "create_function",
            f"{'create or replace' if n.replace else 'create'} {what} {name}",
            details={"function": name, "args": args, "replace": bool(n.replace)},
        )

    def _CreateTrigStmt(self, n: ast.CreateTrigStmt) -> Operation:
        table = table_name(n.relation)
        return self.op(
            "create_trigger",
            f"create trigger {n.trigname} on {table}",
            table=table,
            lock=L.SHARE_ROW_EXCLUSIVE,
            details={"trigger": n.trigname, "replace": bool(n.replace)},
        )

    def _CreateSchemaStmt(self, n: ast.CreateSchemaStmt) -> Operation:
        return self.op("create_schema", f"create schema {n.schemaname}", details={"schema": n.schemaname})

    def _CreateEnumStmt(self, n: ast.CreateEnumStmt) -> Operation:
        name = qualified(_names(n.typeName))
        return self.op("create_type", f"create type {name}", details={"type": name})

    def _CompositeTypeStmt(self, n: ast.CompositeTypeStmt) -> Operation:
        name = table_name(n.typevar)
        return self.op("create_type", f"create type {name}", details={"type": name})

    def _CreateSeqStmt(self, n: ast.CreateSeqStmt) -> Operation:
        name = table_name(n.sequence)
        return self.op("create_sequence", f"create sequence {name}", details={"sequence": name})

    def _CreateExtensionStmt(self, n: ast.CreateExtensionStmt) -> Operation:
        return self.op("create_extension", f"create extension {n.extname}", details={"extension": n.extname})

    def _CommentStmt(self, n: ast.CommentStmt) -> Operation:
        what = ObjectType(n.objtype).name.removeprefix("OBJECT_").lower()
        names = _names(n.object) if isinstance(n.object, tuple) else [n.object.sval]
        target = ".".join(maybe_double_quote_name(part) for part in names)
        table = None
        if what == "table":
            table = target
        elif what == "column":
            table = target.rsplit(".", 1)[0]
        return self.op(
            "comment",
            f"comment on {what} {target}",
            table=table,
            lock=L.SHARE_UPDATE_EXCLUSIVE if table else L.NONE,
            details={"object": what, "target": target, "names": names},
        )

    def _GrantStmt(self, n: ast.GrantStmt) -> Operation:
        return self.op("grant", "grant" if n.is_grant else "revoke")

    def _VariableSetStmt(self, n: ast.VariableSetStmt) -> Operation:
        value = ", ".join(sql_of(a) for a in n.args or ())
        return self.op(
            "set_setting",
            f"set {n.name} = {value}" if value else f"reset {n.name}",
            details={"setting": n.name, "value": value, "local": bool(n.is_local)},
        )

    def _TransactionStmt(self, n: ast.TransactionStmt) -> Operation:
        kind = TransactionStmtKind(n.kind).name.removeprefix("TRANS_STMT_").lower()
        return self.op("transaction", kind, details={"transaction": kind})
