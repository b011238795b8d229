"""The guide's Migration Complexity Matrix, applied: which rule each operation falls under, and why.

Rule names are the keys of ``complexity.rules`` in the policy, so a team can move any rule to another
level in its config. Table size comes from the target's catalog; an unknown size counts as large.
"""

from __future__ import annotations

from bot.policy import ComplexityPolicy
from bot.sql.context import FileContext
from bot.sql.model import ComplexityReason, Operation

# Operations whose rule does not depend on anything but their kind.
FIXED_RULES = {
    "create_table": "create_table",
    "drop_column": "drop_column",
    "alter_column_type": "change_column_type",
    "set_not_null": "set_not_null",
    "drop_not_null": "drop_not_null",
    "set_default": "set_default",
    "drop_default": "drop_default",
    "validate_constraint": "validate_constraint",
    "drop_constraint": "drop_constraint",
    "rename_column": "rename_column",
    "rename_table": "rename_table",
    "rename_index": "rename_index",
    "rename_constraint": "rename_constraint",
    "drop_table": "drop_table",
    "drop_index": "drop_index",
    "create_view": "create_view",
    "drop_view": "drop_view",
    "drop_function": "drop_function",
    "create_trigger": "create_trigger",
    "drop_trigger": "drop_trigger",
    "create_schema": "create_schema",
    "create_type": "create_type",
    "create_sequence": "create_sequence",
    "create_extension": "create_extension",
    "comment": "comment",
    "insert": "data_insert",
    "truncate": "truncate_table",
    "vacuum_full": "table_maintenance",
    "cluster": "table_maintenance",
    "lock_table": "lock_table",
    "grant": "grant",
    "analyze": "analyze",
    "vacuum": "analyze",
    "other": "unrecognised_statement",
}
# Statements that change nothing by themselves.
NO_RULE = {"set_setting", "transaction"}


def _words(rule: str) -> str:
    return rule.replace("_", " ")


def operation_rule(op: Operation, ctx: FileContext) -> tuple[str, str] | None:
    """The matrix rule ``op`` falls under and the fact that decided it; None for SET, BEGIN and such."""
    if op.kind in NO_RULE:
        return None
    if op.table and op.kind != "create_table" and not ctx.existed(op.table):
        return "create_table", f"{op.table} is created in this migration (empty)"
    d = op.details
    if op.kind == "create_index":
        assert op.table is not None
        large, note = ctx.size_note(op.table)
        return ("create_index_large_table" if large else "create_index_small_table"), note
    if op.kind == "add_column":
        if d["default"] == "volatile" or d["identity"] or d["generated"]:
            return "large_data_migration", "every existing row is rewritten"
        if d["not_null"]:
            if d["default"] == "none":
                return "add_not_null_column_without_default", "NOT NULL with no default"
            return "add_not_null_column_with_default", "NOT NULL with a default"
        return "add_nullable_column", "nullable"
    if op.kind == "add_constraint":
        kind = d["constraint_type"]
        if d["not_valid"]:
            return "add_constraint_not_valid", "NOT VALID: existing rows are checked later"
        rule = {"foreign_key": "add_foreign_key", "check": "add_check_constraint"}.get(
            kind, "add_unique_constraint"
        )
        return rule, kind.replace("_", " ")
    if op.kind in {"update", "delete"}:
        assert op.table is not None
        large, note = ctx.size_note(op.table)
        if large or not d["where"]:
            return "large_data_migration", note + ("" if d["where"] else "; no WHERE clause")
        return "batch_data_update", note
    if op.kind == "create_function":
        if not d["replace"]:
            return "create_function", "new function"
        info = ctx.catalog.object_info("function", d["function"].split("."), d["args"])
        if info is not None and not info.exists:
            return "create_function", "new function (not on the target)"
        return (
            "modify_function",
            "replaces a function" if info else "may replace a function (target unreachable)",
        )
    if op.kind == "reindex":
        return ("table_maintenance_concurrent" if d["concurrent"] else "table_maintenance"), "reindex"
    return FIXED_RULES.get(op.kind, "unrecognised_statement"), op.kind.replace("_", " ")


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
