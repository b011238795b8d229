"""What each statement does: pglast parse trees mapped to Operations with the locks PostgreSQL takes.

Lock levels follow PostgreSQL's "Explicit Locking" chapter and each command's page; tests/sql/test_locks.py
checks them against ``pg_locks`` on a real server. A multi-command ALTER TABLE yields one Operation per
command, all with the same statement index. Facts only the target knows (the table of an index, the
views on a column) are added later, by ``bot.sql.facts``; the mapping itself reads nothing but the SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from pglast import ast
from pglast.enums import (
    ConstrType,
    DropBehavior,
    NullTestType,
    ObjectType,
    ReindexObjectType,
    TransactionStmtKind,
)
from pglast.stream import maybe_double_quote_name

from bot.sql.alter import AT, REWRITES, subcommand_lock
from bot.sql.model import Kind, LockLevel, Operation, Statement
from bot.sql.nodes import (
    function_names,
    given,
    names_of,
    option_on,
    quoted,
    read_relations,
    sql_of,
    table_name,
    type_name,
    walk,
)

L = LockLevel
K = Kind

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
# Built-in functions a SELECT may call without doing anything the analysis cannot see.
KNOWN_FUNCTIONS = STABLE_FUNCTIONS | {
    "count", "sum", "min", "max", "avg", "length", "char_length", "nullif", "greatest", "least", "format",
    "concat", "substring", "split_part", "trim", "current_setting", "version", "to_char", "to_regclass",
    "pg_sleep", "set_config", "setval", "nextval", "currval", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_try_advisory_lock", "pg_try_advisory_xact_lock", "pg_advisory_unlock",
}  # fmt: skip
SERIAL_TYPES = frozenset({"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"})
# Statements PostgreSQL refuses inside a transaction block (each command's page says so).
NEVER_IN_TRANSACTION = (
    ast.CreatedbStmt,
    ast.DropdbStmt,
    ast.AlterSystemStmt,
    ast.CreateTableSpaceStmt,
    ast.DropTableSpaceStmt,
)


def default_kind(expr: ast.Node | None) -> str:
    """``none``, ``constant``, ``volatile`` or ``unknown`` (a function not classified without a catalog)."""
    if expr is None:
        return "none"
    kinds = set()
    for node in walk(expr):
        if isinstance(node, ast.FuncCall):
            name = names_of(node.funcname)[-1].lower()
            if name in VOLATILE_FUNCTIONS:
                kinds.add("volatile")
            elif name not in STABLE_FUNCTIONS:
                kinds.add("unknown")
    if "volatile" in kinds:
        return "volatile"
    return "unknown" if kinds else "constant"


def _column_facts(col: ast.ColumnDef) -> dict[str, Any]:
    """NOT NULL, default and inline constraints of a column definition."""
    type_names = names_of(col.typeName.names) if col.typeName else []
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
            facts["generated"] = "stored" if con.generated_kind == "s" else "virtual"
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
    }.get(given(con.contype), "other")
    facts: dict[str, Any] = {
        "constraint": con.conname,
        "constraint_type": kind,
        "not_valid": bool(con.skip_validation),
        "using_index": con.indexname,
        "columns": names_of(con.keys) or names_of(con.fk_attrs),
    }
    if kind == "foreign_key":
        facts["references"] = table_name(con.pktable)
        facts["columns"] = names_of(con.fk_attrs)
    if kind == "check":
        # PostgreSQL names an unnamed check after its column only when it references exactly one
        referenced = sorted(_column_refs(con.raw_expr))
        facts["check_columns"] = referenced if len(referenced) == 1 else []
        expr = con.raw_expr
        is_not_null = (
            isinstance(expr, ast.NullTest)
            and expr.nulltesttype == NullTestType.IS_NOT_NULL
            and isinstance(expr.arg, ast.ColumnRef)
        )
        facts["not_null_column"] = referenced[0] if is_not_null else None
    return facts


def _column_refs(node: ast.Node | None) -> set[str]:
    return {names_of(n.fields)[-1] for n in walk(node) if isinstance(n, ast.ColumnRef)}


# ALTER TABLE commands described by their name alone: kind, summary, detail key, scans the table
SIMPLE_ALTERS: dict[AT, tuple[Kind, str, str, bool]] = {
    AT.AT_DropColumn: (K.DROP_COLUMN, "drop column {table}.{name}", "column", False),
    AT.AT_SetNotNull: (K.SET_NOT_NULL, "set NOT NULL on {table}.{name}", "column", True),
    AT.AT_DropNotNull: (K.DROP_NOT_NULL, "drop NOT NULL on {table}.{name}", "column", False),
    AT.AT_ValidateConstraint: (
        K.VALIDATE_CONSTRAINT,
        "validate constraint {name} on {table}",
        "constraint",
        True,
    ),
    AT.AT_DropConstraint: (K.DROP_CONSTRAINT, "drop constraint {name} on {table}", "constraint", False),
}


def _words(enum_name: str, prefix: str) -> str:
    return enum_name.removeprefix(prefix).lower().replace("_", " ")


class OperationMapper:
    """Maps one statement to its operations."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.index = statement.index

    def op(self, kind: Kind, summary: str, **kw: Any) -> Operation:
        return Operation(statement_index=self.index, kind=kind, summary=summary, **kw)

    def map(self, node: ast.Node) -> list[Operation]:
        method = _DISPATCH.get(type(node))
        if method is None:
            name = type(node).__name__.removesuffix("Stmt")
            return [
                self.op(
                    K.OTHER,
                    f"{name} statement (not analysed)",
                    transactional=not isinstance(node, NEVER_IN_TRANSACTION),
                    details={"node": type(node).__name__},
                )
            ]
        result = method(self, node)
        return result if isinstance(result, list) else [result]

    # --- tables -------------------------------------------------------------------------------------
    def _create(self, n: ast.CreateStmt) -> list[Operation]:
        table = table_name(n.relation)
        columns = [_column_facts(c) for c in n.tableElts or () if isinstance(c, ast.ColumnDef)]
        ops = [
            self.op(
                K.CREATE_TABLE,
                f"create table {table}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
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

    def _create_table_as(self, n: ast.CreateTableAsStmt | ast.SelectStmt) -> Operation:
        into = given(n.into if isinstance(n, ast.CreateTableAsStmt) else n.intoClause)
        table = table_name(into.rel)
        what = "materialized view" if getattr(n, "objtype", None) == ObjectType.OBJECT_MATVIEW else "table"
        query = n.query if isinstance(n, ast.CreateTableAsStmt) else n
        return self.op(
            K.CREATE_TABLE_AS,
            f"create {what} {table} from a query",
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            details={"object": what},
            other_locks=dict.fromkeys(read_relations(given(query), skip=into.rel), L.ACCESS_SHARE),
        )

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
            K.ADD_CONSTRAINT,
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
            other_locks={} if references == table else {references: L.SHARE_ROW_EXCLUSIVE},
        )

    def _alter_table(self, n: ast.AlterTableStmt) -> list[Operation]:
        target = table_name(n.relation)
        if n.objtype == ObjectType.OBJECT_INDEX:
            return [
                self.op(K.ALTER_OBJECT, f"alter index {target}", details={"object": "index", "name": target})
            ]
        return [self._alter_cmd(target, cmd) for cmd in n.cmds or ()]

    def _alter_cmd(self, table: str, cmd: ast.AlterTableCmd) -> Operation:
        sub, col, definition = (
            given(cmd.subtype),
            cmd.name,
            cast(Any, cmd.def_),
        )  # the subtype says what it is
        if sub in SIMPLE_ALTERS:
            kind, template, detail, scans = SIMPLE_ALTERS[sub]
            details: dict[str, Any] = {detail: col}
            if sub in (AT.AT_DropColumn, AT.AT_DropConstraint):
                details["cascade"] = cmd.behavior == DropBehavior.DROP_CASCADE
            return self.op(
                kind,
                template.format(table=table, name=col),
                table=table,
                lock=subcommand_lock(sub, definition),
                scans_table=scans,
                details=details,
            )
        if sub == AT.AT_AddColumn:
            facts = _column_facts(definition)
            rewrites = facts["default"] == "volatile" or facts["identity"] or facts["generated"] == "stored"
            ops_locks = {facts["references"]: L.SHARE_ROW_EXCLUSIVE} if facts["references"] else {}
            return self.op(
                K.ADD_COLUMN,
                f"add column {table}.{facts['column']} {facts['type']}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
                rewrites_table=rewrites,
                details=facts,
                other_locks=ops_locks,
            )
        if sub == AT.AT_AlterColumnType:
            new_type = type_name(definition.typeName)
            return self.op(
                K.ALTER_COLUMN_TYPE,
                f"change type of {table}.{col} to {new_type}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
                rewrites_table=True,
                details={"column": col, "type": new_type, "using": bool(definition.raw_default)},
            )
        if sub == AT.AT_ColumnDefault:
            if definition is None:
                return self.op(
                    K.DROP_DEFAULT,
                    f"drop default of {table}.{col}",
                    table=table,
                    lock=L.ACCESS_EXCLUSIVE,
                    details={"column": col},
                )
            default = sql_of(definition)
            return self.op(
                K.SET_DEFAULT,
                f"set default of {table}.{col} to {default}",
                table=table,
                lock=L.ACCESS_EXCLUSIVE,
                details={"column": col, "default": default},
            )
        if sub == AT.AT_AddConstraint:
            return self._add_constraint(table, definition)
        if sub in (AT.AT_AttachPartition, AT.AT_DetachPartition):
            return self._partition(table, sub, definition)
        name = _words(AT(sub).name, "AT_")
        return self.op(
            K.ALTER_TABLE,
            f"alter table {table}: {name}" + (f" {col}" if col else ""),
            table=table,
            lock=subcommand_lock(sub, definition),
            rewrites_table=sub in REWRITES,
            details={"subcommand": name, "rewrite": REWRITES.get(sub)},
        )

    def _partition(self, parent: str, sub: AT, cmd: ast.PartitionCmd) -> Operation:
        partition = table_name(cmd.name)
        if sub == AT.AT_AttachPartition:
            # the parent only needs SHARE UPDATE EXCLUSIVE; the partition is scanned to check its bound
            return self.op(
                K.ATTACH_PARTITION,
                f"attach partition {partition} to {parent}",
                table=parent,
                lock=L.SHARE_UPDATE_EXCLUSIVE,
                scans_table=True,
                details={"partition": partition, "default": bool(cmd.bound and cmd.bound.is_default)},
                other_locks={partition: L.ACCESS_EXCLUSIVE},
            )
        concurrent = bool(cmd.concurrent)
        return self.op(
            K.DETACH_PARTITION,
            f"detach partition {partition} from {parent}" + (" concurrently" if concurrent else ""),
            table=parent,
            lock=L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.ACCESS_EXCLUSIVE,
            transactional=not concurrent,
            details={"partition": partition, "concurrent": concurrent},
            other_locks={partition: L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.ACCESS_EXCLUSIVE},
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
        using = f" using index {facts['using_index']}" if facts["using_index"] else ""
        return self.op(
            K.ADD_CONSTRAINT,
            f"add {label} constraint {name} on {table}{using}" + (" NOT VALID" if facts["not_valid"] else ""),
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            scans_table=(kind == "check" and not facts["not_valid"]) or builds_index,
            details=facts,
        )

    def _rename(self, n: ast.RenameStmt) -> Operation:
        kind = n.renameType
        target = table_name(n.relation) if n.relation else quoted(names_of(n.object))
        if kind == ObjectType.OBJECT_COLUMN:
            return self.op(
                K.RENAME_COLUMN,
                f"rename column {target}.{n.subname} to {n.newname}",
                table=target,
                lock=L.ACCESS_EXCLUSIVE,
                details={"column": n.subname, "new_name": n.newname},
            )
        if kind == ObjectType.OBJECT_TABLE:
            return self.op(
                K.RENAME_TABLE,
                f"rename table {target} to {n.newname}",
                table=target,
                lock=L.ACCESS_EXCLUSIVE,
                details={"new_name": n.newname},
            )
        if kind == ObjectType.OBJECT_INDEX:
            return self.op(
                K.RENAME_INDEX,
                f"rename index {target} to {n.newname}",
                details={"index": target, "new_name": n.newname},
            )
        if kind == ObjectType.OBJECT_TABCONSTRAINT:
            return self.op(
                K.RENAME_CONSTRAINT,
                f"rename constraint {n.subname} on {target} to {n.newname}",
                table=target,
                lock=L.ACCESS_EXCLUSIVE,
                details={"constraint": n.subname, "new_name": n.newname},
            )
        what = _words(ObjectType(given(kind)).name, "OBJECT_")
        return self.op(
            K.ALTER_OBJECT,
            f"rename {what} {target} to {n.newname}",
            details={"object": what, "name": target, "new_name": n.newname},
        )

    def _drop(self, n: ast.DropStmt) -> list[Operation]:
        kind = n.removeType
        cascade = n.behavior == DropBehavior.DROP_CASCADE
        ops = []
        for obj in n.objects or ():
            names = names_of(obj) if isinstance(obj, tuple) else [sql_of(obj)]
            name = quoted(names) if isinstance(obj, tuple) else names[0]
            common = {"cascade": cascade, "if_exists": bool(n.missing_ok)}
            if kind == ObjectType.OBJECT_TABLE:
                ops.append(
                    self.op(
                        K.DROP_TABLE,
                        f"drop table {name}",
                        table=name,
                        lock=L.ACCESS_EXCLUSIVE,
                        details=common,
                    )
                )
            elif kind == ObjectType.OBJECT_INDEX:
                concurrent = bool(n.concurrent)
                ops.append(
                    self.op(
                        K.DROP_INDEX,
                        f"drop index {name}" + (" concurrently" if concurrent else ""),
                        lock=L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.ACCESS_EXCLUSIVE,
                        transactional=not concurrent,
                        details={"index": name, "concurrent": concurrent, **common},
                    )
                )
            elif kind in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
                ops.append(self.op(K.DROP_VIEW, f"drop view {name}", details={"view": name, **common}))
            elif kind in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE):
                ops.append(
                    self.op(K.DROP_FUNCTION, f"drop function {name}", details={"function": name, **common})
                )
            elif kind in (ObjectType.OBJECT_TRIGGER, ObjectType.OBJECT_POLICY, ObjectType.OBJECT_RULE):
                table, what = quoted(names[:-1]), _words(ObjectType(kind).name, "OBJECT_")
                ops.append(
                    self.op(
                        K.DROP_TRIGGER if kind == ObjectType.OBJECT_TRIGGER else K.ALTER_TABLE,
                        f"drop {what} {names[-1]} on {table}",
                        table=table,
                        lock=L.ACCESS_EXCLUSIVE,
                        details={what: names[-1], **common},
                    )
                )
            else:
                what = _words(ObjectType(given(kind)).name, "OBJECT_")
                ops.append(
                    self.op(
                        K.DROP_OBJECT, f"drop {what} {name}", details={"object": what, "name": name, **common}
                    )
                )
        return ops

    # --- indexes and maintenance -----------------------------------------------------------------------
    def _index(self, n: ast.IndexStmt) -> Operation:
        table = table_name(n.relation)
        columns = [p.name or sql_of(p.expr) for p in n.indexParams or ()]
        shown = ", ".join(_index_param(p) for p in n.indexParams or ())
        concurrent = bool(n.concurrent)
        unique = "unique " if n.unique else ""
        return self.op(
            K.CREATE_INDEX,
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

    def _vacuum(self, n: ast.VacuumStmt) -> list[Operation]:
        tables = [table_name(r.relation) for r in n.rels or () if r.relation]
        if not n.is_vacuumcmd:
            return [
                self.op(K.ANALYZE, f"analyze {t}", table=t, lock=L.SHARE_UPDATE_EXCLUSIVE) for t in tables
            ] or [self.op(K.ANALYZE, "analyze every table")]
        full = option_on(n.options, "full")
        kind = K.VACUUM_FULL if full else K.VACUUM
        lock = L.ACCESS_EXCLUSIVE if full else L.SHARE_UPDATE_EXCLUSIVE
        label = "vacuum full" if full else "vacuum"
        return [
            self.op(kind, f"{label} {t}", table=t, lock=lock, rewrites_table=full, transactional=False)
            for t in tables
        ] or [self.op(kind, f"{label} every table", lock=lock, rewrites_table=full, transactional=False)]

    def _cluster(self, n: ast.ClusterStmt) -> Operation:
        table = table_name(n.relation) if n.relation else None
        return self.op(
            K.CLUSTER,
            f"cluster {table or 'every clustered table'}",
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            rewrites_table=True,
            transactional=table is not None,
        )

    def _reindex(self, n: ast.ReindexStmt) -> Operation:
        concurrent = option_on(n.params, "concurrently")
        kind = ReindexObjectType(given(n.kind))
        what = _words(kind.name, "REINDEX_OBJECT_")
        target = table_name(n.relation) if n.relation else (n.name or "the current database")
        on_table = kind == ReindexObjectType.REINDEX_OBJECT_TABLE
        many = kind not in (ReindexObjectType.REINDEX_OBJECT_TABLE, ReindexObjectType.REINDEX_OBJECT_INDEX)
        return self.op(
            K.REINDEX,
            f"reindex {what} {target}" + (" concurrently" if concurrent else ""),
            table=target if on_table else None,
            lock=L.SHARE_UPDATE_EXCLUSIVE if concurrent else L.SHARE,
            transactional=not (concurrent or many),
            details={"concurrent": concurrent, "object": what, "index": target if not on_table else None},
        )

    def _refresh(self, n: ast.RefreshMatViewStmt) -> Operation:
        view = table_name(n.relation)
        concurrent = bool(n.concurrent)
        return self.op(
            K.REFRESH_MATERIALIZED_VIEW,
            f"refresh materialized view {view}" + (" concurrently" if concurrent else ""),
            table=view,
            lock=L.EXCLUSIVE if concurrent else L.ACCESS_EXCLUSIVE,
            rewrites_table=not concurrent,
            details={"concurrent": concurrent},
        )

    def _lock(self, n: ast.LockStmt) -> list[Operation]:
        mode = list(LockLevel)[given(n.mode)]
        return [
            self.op(
                K.LOCK_TABLE,
                f"lock table {table_name(r)} in {mode.value} mode",
                table=table_name(r),
                lock=mode,
                details={"mode": mode.value},
            )
            for r in given(n.relations)
        ]

    def _truncate(self, n: ast.TruncateStmt) -> list[Operation]:
        cascade = n.behavior == DropBehavior.DROP_CASCADE
        return [
            self.op(
                K.TRUNCATE,
                f"truncate {table_name(r)}" + (" cascade" if cascade else ""),
                table=table_name(r),
                lock=L.ACCESS_EXCLUSIVE,
                details={"cascade": cascade},
            )
            for r in given(n.relations)
        ]

    # --- data ---------------------------------------------------------------------------------------
    def _data_change(self, kind: Kind, verb: str, n: ast.UpdateStmt | ast.DeleteStmt) -> Operation:
        table = table_name(n.relation)
        where = n.whereClause is not None
        return self.op(
            kind,
            f"{verb} {table}" + ("" if where else " (every row)"),
            table=table,
            lock=L.ROW_EXCLUSIVE,
            details={"where": where},
            other_locks=self._reads(n, n.relation),
        )

    def _reads(self, n: ast.Node, target: ast.RangeVar | None) -> dict[str, LockLevel]:
        own = table_name(target) if target else None
        return {t: L.ACCESS_SHARE for t in read_relations(n, skip=target) if t != own}

    def _update(self, n: ast.UpdateStmt) -> Operation:
        return self._data_change(K.UPDATE, "update", n)

    def _delete(self, n: ast.DeleteStmt) -> Operation:
        return self._data_change(K.DELETE, "delete from", n)

    def _insert(self, n: ast.InsertStmt) -> Operation:
        table = table_name(n.relation)
        return self.op(
            K.INSERT,
            f"insert into {table}",
            table=table,
            lock=L.ROW_EXCLUSIVE,
            other_locks=self._reads(n, n.relation),
        )

    def _merge(self, n: ast.MergeStmt) -> Operation:
        table = table_name(n.relation)
        return self.op(
            K.MERGE,
            f"merge into {table}",
            table=table,
            lock=L.ROW_EXCLUSIVE,
            details={"where": True},
            other_locks=self._reads(n, n.relation),
        )

    def _copy(self, n: ast.CopyStmt) -> Operation:
        table = table_name(n.relation) if n.relation else None
        verb = "copy into" if n.is_from else "copy out of"
        return self.op(
            K.COPY,
            f"{verb} {table or 'a query'}",
            table=table,
            lock=L.ROW_EXCLUSIVE if n.is_from else L.ACCESS_SHARE,
            details={"from": bool(n.is_from)},
            other_locks=self._reads(n.query, None) if n.query else {},
        )

    def _select(self, n: ast.SelectStmt) -> Operation:
        if n.intoClause is not None:
            return self._create_table_as(n)
        setting = _set_config(n)
        if setting is not None:
            name, value, local = setting
            return self.op(
                K.SET_SETTING,
                f"set {name} = {value}" + (" (local)" if local else ""),
                details={"setting": name, "value": value, "local": local},
            )
        for_update = any(True for _ in n.lockingClause or ())
        unknown = [f for f in function_names(n) if f.split(".")[-1].lower() not in KNOWN_FUNCTIONS]
        return self.op(
            K.SELECT,
            "select" + (f" calling {', '.join(unknown)}" if unknown else ""),
            details={"functions": unknown},
            other_locks=dict.fromkeys(read_relations(n), L.ROW_SHARE if for_update else L.ACCESS_SHARE),
        )

    # --- code ---------------------------------------------------------------------------------------
    def _do(self, n: ast.DoStmt) -> Operation:
        language = next((str(a.arg.sval) for a in n.args or () if a.defname == "language"), "plpgsql")
        body = next((str(a.arg.sval) for a in n.args or () if a.defname == "as"), "")
        from bot.sql.plpgsql import block_contents  # only for DO blocks: few files have one

        contents = block_contents(self.statement, body) if language.lower() == "plpgsql" else None
        return self.op(
            K.DO,
            f"DO block ({language})",
            details={
                "language": language,
                "statements": contents.statements if contents else [],
                "dynamic": contents.dynamic if contents else [],
                "parsed": contents is not None,
            },
        )

    def _call(self, n: ast.CallStmt) -> Operation:
        name = quoted(names_of(given(n.funccall).funcname))
        return self.op(K.CALL, f"call {name}", details={"function": name})

    # --- other objects ------------------------------------------------------------------------------
    def _view(self, n: ast.ViewStmt) -> Operation:
        view = table_name(n.view)
        return self.op(
            K.CREATE_VIEW,
            f"{'create or replace' if n.replace else 'create'} view {view}",
            details={"view": view, "replace": bool(n.replace)},
            other_locks=dict.fromkeys(read_relations(given(n.query)), L.ACCESS_SHARE),
        )

    def _create_function(self, n: ast.CreateFunctionStmt) -> Operation:
        names = names_of(n.funcname)
        args = [type_name(p.argType) for p in n.parameters or () if str(p.mode) != "FUNC_PARAM_TABLE"]
        what = "procedure" if n.is_procedure else "function"
        return self.op(
            K.CREATE_FUNCTION,
            f"{'create or replace' if n.replace else 'create'} {what} {quoted(names)}",
            details={"function": quoted(names), "names": names, "args": args, "replace": bool(n.replace)},
        )

    def _trigger(self, n: ast.CreateTrigStmt) -> Operation:
        table = table_name(n.relation)
        return self.op(
            K.CREATE_TRIGGER,
            f"create trigger {n.trigname} on {table}",
            table=table,
            lock=L.SHARE_ROW_EXCLUSIVE,
            details={"trigger": n.trigname, "replace": bool(n.replace)},
        )

    def _on_table(
        self, kind: str, table_node: ast.RangeVar | None, lock: LockLevel, name: str | None
    ) -> Operation:
        table = table_name(table_node)
        return self.op(
            K.ALTER_TABLE, f"{kind} {name} on {table}", table=table, lock=lock, details={"subcommand": kind}
        )

    def _policy(self, n: ast.CreatePolicyStmt) -> Operation:
        return self._on_table("create policy", n.table, L.ACCESS_EXCLUSIVE, n.policy_name)

    def _alter_policy(self, n: ast.AlterPolicyStmt) -> Operation:
        return self._on_table("alter policy", n.table, L.ACCESS_EXCLUSIVE, n.policy_name)

    def _rule(self, n: ast.RuleStmt) -> Operation:
        return self._on_table("create rule", n.relation, L.ACCESS_EXCLUSIVE, n.rulename)

    def _statistics(self, n: ast.CreateStatsStmt) -> Operation:
        name = quoted(names_of(n.defnames)) or "(unnamed)"
        return self._on_table("create statistics", given(n.relations)[0], L.SHARE_UPDATE_EXCLUSIVE, name)

    def _schema(self, n: ast.CreateSchemaStmt) -> Operation:
        return self.op(K.CREATE_SCHEMA, f"create schema {n.schemaname}", details={"schema": n.schemaname})

    def _enum(self, n: ast.CreateEnumStmt) -> Operation:
        name = quoted(names_of(n.typeName))
        return self.op(K.CREATE_TYPE, f"create type {name}", details={"type": name})

    def _composite(self, n: ast.CompositeTypeStmt) -> Operation:
        name = table_name(n.typevar)
        return self.op(K.CREATE_TYPE, f"create type {name}", details={"type": name})

    def _alter_enum(self, n: ast.AlterEnumStmt) -> Operation:
        name = quoted(names_of(n.typeName))
        if n.oldVal:
            return self.op(
                K.ALTER_OBJECT,
                f"rename value {n.oldVal} of type {name} to {n.newVal}",
                details={"object": "type", "name": name},
            )
        return self.op(
            K.ADD_ENUM_VALUE,
            f"add value '{n.newVal}' to type {name}",
            details={"type": name, "value": n.newVal},
        )

    def _sequence(self, n: ast.CreateSeqStmt) -> Operation:
        name = table_name(n.sequence)
        return self.op(K.CREATE_SEQUENCE, f"create sequence {name}", details={"sequence": name})

    def _extension(self, n: ast.CreateExtensionStmt) -> Operation:
        return self.op(K.CREATE_EXTENSION, f"create extension {n.extname}", details={"extension": n.extname})

    def _comment(self, n: ast.CommentStmt) -> Operation:
        what = _words(ObjectType(given(n.objtype)).name, "OBJECT_")
        obj = n.object
        if isinstance(obj, ast.TypeName):
            names = names_of(obj.names)
        elif isinstance(obj, ast.ObjectWithArgs):  # a function, an operator, an aggregate
            names = names_of(obj.objname)
        else:  # a name, or its dotted parts
            names = names_of(obj if isinstance(obj, tuple) else (obj,))
        target = quoted(names)
        table = None
        if what in ("table", "materialized view"):
            table = target
        elif what == "column":
            table = quoted(names[:-1])
        return self.op(
            K.COMMENT,
            f"comment on {what} {target}",
            table=table,
            lock=L.SHARE_UPDATE_EXCLUSIVE if table else L.NONE,
            details={"object": what, "target": target, "names": names},
        )

    def _grant(self, n: ast.GrantStmt) -> Operation:
        tables = [table_name(o) for o in n.objects or () if isinstance(o, ast.RangeVar)]
        return self.op(
            K.GRANT,
            "grant" if n.is_grant else "revoke",
            other_locks=dict.fromkeys(tables, L.ACCESS_SHARE),
        )

    def _set(self, n: ast.VariableSetStmt) -> Operation:
        value = ", ".join(sql_of(a) for a in n.args or ())
        return self.op(
            K.SET_SETTING,
            f"set {n.name} = {value}" if value else f"reset {n.name or 'all'}",
            details={"setting": n.name, "value": value, "local": bool(n.is_local)},
        )

    def _transaction(self, n: ast.TransactionStmt) -> Operation:
        kind = TransactionStmtKind(given(n.kind)).name.removeprefix("TRANS_STMT_").lower()
        return self.op(K.TRANSACTION, kind, details={"transaction": kind})

    def _set_schema(self, n: ast.AlterObjectSchemaStmt) -> Operation:
        if n.relation is None:
            return self._alter_object(n)
        table = table_name(n.relation)
        return self.op(
            K.ALTER_TABLE,
            f"move {table} to schema {n.newschema}",
            table=table,
            lock=L.ACCESS_EXCLUSIVE,
            details={"subcommand": "set schema"},
        )

    def _create_object(self, n: ast.Node) -> Operation:
        what = type(n).__name__.removeprefix("Create").removesuffix("Stmt").lower()
        return self.op(K.CREATE_OBJECT, f"create {what}", details={"object": what})

    def _alter_object(self, n: ast.Node) -> Operation:
        what = type(n).__name__.removeprefix("Alter").removesuffix("Stmt").lower()
        return self.op(K.ALTER_OBJECT, f"alter {what}", details={"object": what})


def _index_param(p: ast.IndexElem) -> str:
    """An index column as written, with DESC, opclass or collation; a plain column without the printer."""
    plain = p.name and not (p.ordering or p.nulls_ordering or p.opclass or p.collation or p.opclassopts)
    return maybe_double_quote_name(p.name) if plain and p.name else sql_of(p)


def _set_config(n: ast.SelectStmt) -> tuple[str, str, bool] | None:
    """``SELECT set_config('name', 'value', is_local)`` alone, a SET as a call: (name, value, local)."""
    targets = n.targetList or ()
    if len(targets) != 1 or n.fromClause or not isinstance(targets[0].val, ast.FuncCall):
        return None
    call = targets[0].val
    consts = [getattr(a, "val", None) for a in call.args or ()]
    if names_of(call.funcname)[-1].lower() != "set_config" or len(consts) != 3:
        return None
    name, value, local = consts
    if not (isinstance(name, ast.String) and isinstance(value, ast.String)):
        return None
    is_local = option_on((ast.DefElem(defname="local", arg=local),), "local")
    return str(name.sval), "'" + str(value.sval).replace("'", "''") + "'", is_local


_DISPATCH: dict[type, Callable[[OperationMapper, Any], Operation | list[Operation]]] = {
    ast.CreateStmt: OperationMapper._create,
    ast.CreateTableAsStmt: OperationMapper._create_table_as,
    ast.AlterTableStmt: OperationMapper._alter_table,
    ast.RenameStmt: OperationMapper._rename,
    ast.DropStmt: OperationMapper._drop,
    ast.IndexStmt: OperationMapper._index,
    ast.VacuumStmt: OperationMapper._vacuum,
    ast.ClusterStmt: OperationMapper._cluster,
    ast.ReindexStmt: OperationMapper._reindex,
    ast.RefreshMatViewStmt: OperationMapper._refresh,
    ast.LockStmt: OperationMapper._lock,
    ast.TruncateStmt: OperationMapper._truncate,
    ast.UpdateStmt: OperationMapper._update,
    ast.DeleteStmt: OperationMapper._delete,
    ast.InsertStmt: OperationMapper._insert,
    ast.MergeStmt: OperationMapper._merge,
    ast.CopyStmt: OperationMapper._copy,
    ast.SelectStmt: OperationMapper._select,
    ast.DoStmt: OperationMapper._do,
    ast.CallStmt: OperationMapper._call,
    ast.ViewStmt: OperationMapper._view,
    ast.CreateFunctionStmt: OperationMapper._create_function,
    ast.CreateTrigStmt: OperationMapper._trigger,
    ast.CreatePolicyStmt: OperationMapper._policy,
    ast.AlterPolicyStmt: OperationMapper._alter_policy,
    ast.RuleStmt: OperationMapper._rule,
    ast.CreateStatsStmt: OperationMapper._statistics,
    ast.CreateSchemaStmt: OperationMapper._schema,
    ast.CreateEnumStmt: OperationMapper._enum,
    ast.CompositeTypeStmt: OperationMapper._composite,
    ast.AlterEnumStmt: OperationMapper._alter_enum,
    ast.CreateSeqStmt: OperationMapper._sequence,
    ast.CreateExtensionStmt: OperationMapper._extension,
    ast.CommentStmt: OperationMapper._comment,
    ast.GrantStmt: OperationMapper._grant,
    ast.VariableSetStmt: OperationMapper._set,
    ast.TransactionStmt: OperationMapper._transaction,
    ast.AlterObjectSchemaStmt: OperationMapper._set_schema,
    **dict.fromkeys(
        (
            ast.CreateDomainStmt,
            ast.CreateRangeStmt,
            ast.DefineStmt,
            ast.CreateCastStmt,
            ast.CreateConversionStmt,
        ),
        OperationMapper._create_object,
    ),
    **dict.fromkeys(
        (
            ast.AlterSeqStmt,
            ast.AlterFunctionStmt,
            ast.AlterOwnerStmt,
            ast.AlterDomainStmt,
            ast.AlterTypeStmt,
            ast.AlterExtensionStmt,
            ast.AlterDefaultPrivilegesStmt,
        ),
        OperationMapper._alter_object,
    ),
}
