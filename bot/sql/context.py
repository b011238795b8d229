"""What is true at a given statement of a migration file: tables created so far, the transaction, settings.

Rules read it to tell a new, empty table from an existing one, and to tell what the target's catalog
says from what it could not say (an unreachable target is "unknown", never "small"). Transactions and
settings follow PostgreSQL: ``SET LOCAL`` lasts until the end of its transaction and does nothing
outside one; a ``SET`` inside a transaction is undone by its ROLLBACK; a nested BEGIN is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.rules import ComplexityPolicy
from bot.sql.catalog import Catalog
from bot.sql.model import Operation
from bot.sql.versions import oldest_supported

_NUMBER = re.compile(r"^\s*'?\s*(\d+(?:\.\d+)?)")


def timeout_on(value: str | None) -> bool:
    """Whether a lock_timeout/statement_timeout value limits anything (0, DEFAULT and unset do not)."""
    match = _NUMBER.match(value or "")
    return match is not None and float(match.group(1)) > 0


@dataclass
class Transaction:
    """An explicit BEGIN … COMMIT block, as far as the file has gone into it."""

    begin: Operation
    session_before: dict[str, str]
    local: dict[str, str] = field(default_factory=dict)
    enum_values: dict[str, str] = field(default_factory=dict)  # value -> type, added in this block
    not_valid: dict[str, Operation] = field(default_factory=dict)  # constraint -> its ADD … NOT VALID


@dataclass
class FileContext:
    """The analysis's state as it walks a file, statement by statement."""

    catalog: Catalog
    policy: ComplexityPolicy
    runner_settings: dict[str, str] = field(default_factory=dict)  # what the bot's runner sets itself
    version: int | None = None  # the target's version, else the oldest supported one (see ``assumed``)
    assumed: bool = False
    created: set[str] = field(default_factory=set)
    transaction: Transaction | None = None
    session: dict[str, str] = field(default_factory=dict)  # settings set for the session
    ignored_set_local: Operation | None = None  # a SET LOCAL lock_timeout outside a block: no effect
    # CHECK (col IS NOT NULL) constraints added in this file: name -> (table, column), and those known valid
    not_null_checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    not_null_checked: set[tuple[str, str]] = field(default_factory=set)
    # column lists of the indexes created in this file, per table
    created_indexes: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    # foreign keys added in this file: constraint name -> referenced table
    foreign_keys: dict[str, str] = field(default_factory=dict)
    _rows: dict[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = self.catalog.server_version_num()
        self.assumed = known is None
        self.version = known if known is not None else oldest_supported()

    @property
    def in_transaction(self) -> bool:
        return self.transaction is not None

    def setting(self, name: str) -> str | None:
        """The value ``name`` has at this point of the file (None: the server's default)."""
        if self.transaction is not None and name in self.transaction.local:
            return self.transaction.local[name]
        return self.session.get(name)

    @property
    def lock_timeout_set(self) -> bool:
        return timeout_on(self.setting("lock_timeout"))

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

    # --- settings and transactions ---------------------------------------------------------------------
    def set(self, op: Operation) -> None:
        """Apply a SET, SET LOCAL or RESET with PostgreSQL's scope."""
        name, value, local = op.details["setting"], op.details["value"], op.details["local"]
        if name is None:  # RESET ALL
            self.session.clear()
            if self.transaction is not None:
                self.transaction.local.clear()
            return
        if local:
            if self.transaction is None:
                if name == "lock_timeout":
                    self.ignored_set_local = op
                return
            self.transaction.local[name] = value
            return
        self.session[name] = value
        if self.transaction is not None:
            self.transaction.local.pop(name, None)

    def begin(self, op: Operation) -> None:
        self.transaction = Transaction(op, dict(self.session))

    def end(self, committed: bool) -> None:
        """COMMIT (``committed``) or ROLLBACK: local settings end; a rollback undoes the block's SETs."""
        if self.transaction is not None and not committed:
            self.session = self.transaction.session_before
        self.transaction = None
