"""The guide's Migration Complexity Matrix, applied: which rule each operation falls under, and why.

Rule names are the keys of ``complexity.rules`` in the policy, so a team can move any rule to another
level in its config. Table size comes from the target's catalog; an unknown size counts as large.
"""

from __future__ import annotations

from bot.rules import ComplexityPolicy
from bot.sql.context import FileContext
from bot.sql.model import ComplexityReason, Kind, Operation

K = Kind
# Operations whose rule does not depend on anything but their kind.
FIXED_RULES = {
    K.CREATE_TABLE: "create_table",
    K.CREATE_TABLE_AS: "create_table",
    K.DROP_COLUMN: "drop_column",
    K.ALTER_COLUMN_TYPE: "change_column_type",
    K.SET_NOT_NULL: "set_not_null",
    K.DROP_NOT_NULL: "drop_not_null",
    K.SET_DEFAULT: "set_default",
    K.DROP_DEFAULT: "drop_default",
    K.VALIDATE_CONSTRAINT: "validate_constraint",
    K.DROP_CONSTRAINT: "drop_constraint",
    K.ALTER_TABLE: "alter_table",
    K.ATTACH_PARTITION: "attach_partition",
    K.DETACH_PARTITION: "detach_partition",
    K.RENAME_COLUMN: "rename_column",
    K.RENAME_TABLE: "rename_table",
    K.RENAME_INDEX: "rename_index",
    K.RENAME_CONSTRAINT: "rename_constraint",
    K.DROP_TABLE: "drop_table",
    K.DROP_INDEX: "drop_index",
    K.CREATE_VIEW: "create_view",
    K.DROP_VIEW: "drop_view",
    K.DROP_FUNCTION: "drop_function",
    K.DROP_OBJECT: "drop_object",
    K.CREATE_TRIGGER: "create_trigger",
    K.DROP_TRIGGER: "drop_trigger",
    K.CREATE_SCHEMA: "create_schema",
    K.CREATE_TYPE: "create_type",
    K.ADD_ENUM_VALUE: "add_enum_value",
    K.CREATE_SEQUENCE: "create_sequence",
    K.CREATE_EXTENSION: "create_extension",
    K.CREATE_OBJECT: "create_object",
    K.ALTER_OBJECT: "alter_object",
    K.COMMENT: "comment",
    K.INSERT: "data_insert",
    K.TRUNCATE: "truncate_table",
    K.VACUUM_FULL: "table_maintenance",
    K.CLUSTER: "table_maintenance",
    K.LOCK_TABLE: "lock_table",
    K.GRANT: "grant",
    K.ANALYZE: "analyze",
    K.VACUUM: "analyze",
    K.DO: "unrecognised_statement",
    K.CALL: "unrecognised_statement",
    K.OTHER: "unrecognised_statement",
}
# Statements that change nothing by themselves.
NO_RULE = {K.SET_SETTING, K.TRANSACTION}


def _words(rule: str) -> str:
    return rule.replace("_", " ")


def operation_rule(op: Operation, ctx: FileContext) -> tuple[str, str] | None:
    """The matrix rule ``op`` falls under and the fact that decided it; None for SET, BEGIN and such."""
    if op.kind in NO_RULE:
        return None
    if op.table and op.kind not in (K.CREATE_TABLE, K.CREATE_TABLE_AS) and not ctx.existed(op.table):
        return "create_table", f"{op.table} is created in this migration (empty)"
    d = op.details
    if op.kind is K.CREATE_INDEX:
        assert op.table is not None
        large, note = ctx.size_note(op.table)
        return ("create_index_large_table" if large else "create_index_small_table"), note
    if op.kind is K.ADD_COLUMN:
        if op.rewrites_table:
            return "large_data_migration", "every existing row is rewritten"
        if d["not_null"]:
            if d["default"] == "none":
                return "add_not_null_column_without_default", "NOT NULL with no default"
            return "add_not_null_column_with_default", "NOT NULL with a default"
        return "add_nullable_column", "nullable"
    if op.kind is K.ADD_CONSTRAINT:
        kind = d["constraint_type"]
        if d["not_valid"]:
            return "add_constraint_not_valid", "NOT VALID: existing rows are checked later"
        rule = {"foreign_key": "add_foreign_key", "check": "add_check_constraint"}.get(
            kind, "add_unique_constraint"
        )
        return rule, kind.replace("_", " ")
    if op.kind in (K.UPDATE, K.DELETE, K.MERGE):
        assert op.table is not None
        large, note = ctx.size_note(op.table)
        if large or not d["where"]:
            return "large_data_migration", note + ("" if d["where"] else "; no WHERE clause")
        return "batch_data_update", note
    if op.kind is K.SELECT:
        return (
            ("unrecognised_statement", "calls code not analysed")
            if d["functions"]
            else ("read_only", "reads")
        )
    if op.kind is K.COPY:
        return ("data_insert", "copy into a table") if d["from"] else ("read_only", "copy out")
    if op.kind is K.CREATE_FUNCTION:
        if not d["replace"]:
            return "create_function", "new function"
        info = ctx.catalog.object_info("function", d["names"], d["args"])
        if info is not None and not info.exists:
            return "create_function", "new function (not on the target)"
        return (
            "modify_function",
            "replaces a function" if info else "may replace a function (target unreachable)",
        )
    if op.kind in (K.REINDEX, K.REFRESH_MATERIALIZED_VIEW):
        rule = "table_maintenance_concurrent" if d["concurrent"] else "table_maintenance"
        return rule, op.kind.value.replace("_", " ")
    return FIXED_RULES[op.kind], op.kind.value.replace("_", " ")


def operation_reason(op: Operation, ctx: FileContext) -> ComplexityReason | None:
    """The complexity ``op`` brings, judged where it stands in the file."""
    ruled = operation_rule(op, ctx)
    if ruled is None:
        return None
    rule, fact = ruled
    return ComplexityReason(
        ctx.policy.level_of(rule), f"{op.summary}: {_words(rule)} ({fact})", op.statement_index
    )


def restructuring_reason(groups: list[list[str]], policy: ComplexityPolicy) -> ComplexityReason | None:
    """Major restructuring: more tables than the policy allows, or groups of tables no foreign key links.

    ``groups`` are the changed tables grouped by foreign keys (``hazards.table_groups``).
    """
    tables = sum(len(group) for group in groups)
    why = []
    if tables > policy.restructuring_tables:
        why.append(f"{tables} tables changed (over {policy.restructuring_tables})")
    if len(groups) > 1:
        why.append(f"{len(groups)} unrelated groups of tables changed")
    if not why:
        return None
    return ComplexityReason(policy.level_of("major_restructuring"), f"{'; '.join(why)}: major restructuring")
