"""ALTER TABLE subcommands: the lock each takes and whether it rewrites the table.

From PostgreSQL's ``AlterTableGetLockLevel`` (tablecmds.c) and the ALTER TABLE page; tests/sql/test_locks.py
checks them against ``pg_locks``. What is not listed here takes ACCESS EXCLUSIVE, as PostgreSQL's default.
"""

from __future__ import annotations

from typing import Any

from pglast.enums import AlterTableType

from bot.sql.model import LockLevel

AT = AlterTableType
L = LockLevel

WEAKER_LOCKS: dict[AlterTableType, LockLevel] = {
    AT.AT_SetStatistics: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_SetOptions: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ResetOptions: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ClusterOn: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_DropCluster: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ValidateConstraint: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_DetachPartitionFinalize: L.SHARE_UPDATE_EXCLUSIVE,
    AT.AT_EnableTrig: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableAlwaysTrig: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableReplicaTrig: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrig: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableTrigAll: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrigAll: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_EnableTrigUser: L.SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrigUser: L.SHARE_ROW_EXCLUSIVE,
}
# Forms that copy or rewrite every row (and rebuild the indexes) under their ACCESS EXCLUSIVE lock.
REWRITES = {
    AT.AT_SetTableSpace: "copies the whole table and its indexes",
    AT.AT_SetLogged: "rewrites the whole table",
    AT.AT_SetUnLogged: "rewrites the whole table",
    AT.AT_SetAccessMethod: "rewrites the whole table",
    AT.AT_SetExpression: "recomputes the column for every row",
}
# Storage parameters PostgreSQL changes under SHARE UPDATE EXCLUSIVE; any other takes ACCESS EXCLUSIVE.
LIGHT_RELOPTIONS = {
    "fillfactor", "toast_tuple_target", "parallel_workers", "vacuum_index_cleanup", "vacuum_truncate",
    "log_autovacuum_min_duration",
}  # fmt: skip
RELOPTION_FORMS = {AT.AT_SetRelOptions, AT.AT_ResetRelOptions, AT.AT_ReplaceRelOptions}


def subcommand_lock(subtype: AlterTableType, definition: Any) -> LockLevel:
    """The lock one ALTER TABLE subcommand takes on its table."""
    if subtype in RELOPTION_FORMS:
        names = [getattr(option, "defname", "") for option in definition or ()]
        light = all(n in LIGHT_RELOPTIONS or n.split(".")[-1].startswith("autovacuum_") for n in names)
        return L.SHARE_UPDATE_EXCLUSIVE if light else L.ACCESS_EXCLUSIVE
    return WEAKER_LOCKS.get(subtype, L.ACCESS_EXCLUSIVE)
