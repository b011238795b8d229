"""What is true at a given statement of a migration file: tables created so far, transaction, lock_timeout.

Rules read it to tell a new, empty table from an existing one, and to tell what the target's catalog
says from what it could not say (an unreachable target is "unknown", never "small").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.policy import ComplexityPolicy
from bot.sql.catalog import Catalog


@dataclass
class FileContext:
    catalog: Catalog
    policy: ComplexityPolicy
    created: set[str] = field(default_factory=set)
    in_transaction: bool = False
    lock_timeout_set: bool = False
    # CHECK (col IS NOT NULL) constraints added in this file: name -> (table, column), and those known valid
    not_null_checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    not_null_checked: set[tuple[str, str]] = field(default_factory=set)
    # column lists of the indexes created in this file, per table
    created_indexes: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    _rows: dict[str, int | None] = field(default_factory=dict)

    def existed(self, table: str | None) -> bool:
        """True for a table that was there before this file ran (not created earlier in it)."""
        return table is not None and table not in self.created

    def rows(self, table: str) -> int | None:
        """The catalog's row estimate; 0 for a table created in this file; None when unknown."""
        if table in self.created:
            return 0
        if table not in self._rows:
            self._rows[table] = self.catalog.row_estimate(table)
        return self._rows[table]

    def known_rows(self) -> dict[str, int]:
        return {t: n for t, n in self._rows.items() if n is not None}

    def size_note(self, table: str) -> tuple[bool, str]:
        """Whether ``table`` counts as large, and the words that say why."""
        rows, limit = self.rows(table), self.policy.large_table_rows
        if table in self.created:
            return False, f"{table} is created in this migration (empty)"
        if rows is None:
            return True, f"size of {table} unknown (target unreachable or never analysed): treated as large"
        if rows > limit:
            return True, f"{table} has ~{rows:,} rows (over {limit:,})"
        return False, f"{table} has ~{rows:,} rows (under {limit:,})"
