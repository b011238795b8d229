"""Value types of the SQL analysis: what each statement does, what it locks, what it risks.

Plain frozen dataclasses, free of pglast and Slack, so that plans can be stored as JSON,
rendered by any front end, and compared in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """The guide's three-step scale, used for complexity and for hazard severity."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @classmethod
    def highest(cls, levels: list[Level], default: Level | None = None) -> Level:
        """The most severe of ``levels`` (``default``, else LOW, when empty)."""
        return max(levels, key=lambda lv: lv.rank, default=default or cls.LOW)


_LEVEL_RANK = {Level.LOW: 0, Level.MEDIUM: 1, Level.HIGH: 2}


class LockLevel(StrEnum):
    """PostgreSQL table-level lock modes, weakest first (docs: "Explicit Locking")."""

    NONE = "none"
    ACCESS_SHARE = "ACCESS SHARE"
    ROW_SHARE = "ROW SHARE"
    ROW_EXCLUSIVE = "ROW EXCLUSIVE"
    SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
    SHARE = "SHARE"
    SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
    EXCLUSIVE = "EXCLUSIVE"
    ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

    @property
    def rank(self) -> int:
        return _LOCK_RANK[self]

    @property
    def blocks_writes(self) -> bool:
        """SHARE and stronger conflict with ROW EXCLUSIVE: INSERT/UPDATE/DELETE wait."""
        return self.rank >= LockLevel.SHARE.rank

    @classmethod
    def strongest(cls, locks: list[LockLevel]) -> LockLevel:
        return max(locks, key=lambda lk: lk.rank, default=cls.NONE)


_LOCK_RANK = {lock: rank for rank, lock in enumerate(LockLevel)}


class Kind(StrEnum):
    """What an operation does; the complexity matrix, hazard rules and rollback inverses are keyed by it."""

    CREATE_TABLE = "create_table"
    CREATE_TABLE_AS = "create_table_as"  # also SELECT INTO and CREATE MATERIALIZED VIEW: filled from a query
    ADD_COLUMN = "add_column"
    DROP_COLUMN = "drop_column"
    ALTER_COLUMN_TYPE = "alter_column_type"
    SET_NOT_NULL = "set_not_null"
    DROP_NOT_NULL = "drop_not_null"
    SET_DEFAULT = "set_default"
    DROP_DEFAULT = "drop_default"
    ADD_CONSTRAINT = "add_constraint"
    VALIDATE_CONSTRAINT = "validate_constraint"
    DROP_CONSTRAINT = "drop_constraint"
    ALTER_TABLE = "alter_table"  # any other ALTER TABLE form, policies, rules, statistics
    ATTACH_PARTITION = "attach_partition"
    DETACH_PARTITION = "detach_partition"
    RENAME_COLUMN = "rename_column"
    RENAME_TABLE = "rename_table"
    RENAME_INDEX = "rename_index"
    RENAME_CONSTRAINT = "rename_constraint"
    DROP_TABLE = "drop_table"
    DROP_INDEX = "drop_index"
    DROP_VIEW = "drop_view"
    DROP_FUNCTION = "drop_function"
    DROP_TRIGGER = "drop_trigger"
    DROP_OBJECT = "drop_object"
    CREATE_INDEX = "create_index"
    VACUUM = "vacuum"
    VACUUM_FULL = "vacuum_full"
    ANALYZE = "analyze"
    CLUSTER = "cluster"
    REINDEX = "reindex"
    REFRESH_MATERIALIZED_VIEW = "refresh_materialized_view"
    LOCK_TABLE = "lock_table"
    TRUNCATE = "truncate"
    UPDATE = "update"
    DELETE = "delete"
    INSERT = "insert"
    MERGE = "merge"
    COPY = "copy"
    SELECT = "select"
    CREATE_VIEW = "create_view"
    CREATE_FUNCTION = "create_function"
    CREATE_TRIGGER = "create_trigger"
    CREATE_SCHEMA = "create_schema"
    CREATE_TYPE = "create_type"
    ADD_ENUM_VALUE = "add_enum_value"
    CREATE_SEQUENCE = "create_sequence"
    CREATE_EXTENSION = "create_extension"
    CREATE_OBJECT = "create_object"  # domains, casts, operators …: no table lock, undone by hand
    ALTER_OBJECT = "alter_object"
    COMMENT = "comment"
    GRANT = "grant"
    SET_SETTING = "set_setting"
    TRANSACTION = "transaction"
    DO = "do"  # code the analysis only sees into where it is plain SQL
    CALL = "call"
    OTHER = "other"  # a statement kind the analysis does not model


class Code(StrEnum):
    """Hazard codes: stable names for CI filters and the examples' expectations."""

    NOT_ANALYSED = "not_analysed"
    INDEX_WITHOUT_CONCURRENTLY = "index_without_concurrently"
    CONCURRENTLY_IN_TRANSACTION = "concurrently_in_transaction"
    CANNOT_RUN_IN_TRANSACTION = "cannot_run_in_transaction"
    ENUM_VALUE_USED_IN_TRANSACTION = "enum_value_used_in_transaction"
    VALIDATE_IN_SAME_TRANSACTION = "validate_in_same_transaction"
    TRANSACTION_LEFT_OPEN = "transaction_left_open"
    NESTED_TRANSACTION = "nested_transaction"
    ADD_COLUMN_NOT_NULL_WITHOUT_DEFAULT = "add_column_not_null_without_default"
    ADD_COLUMN_VOLATILE_DEFAULT = "add_column_volatile_default"
    ADD_COLUMN_DEFAULT_REWRITE = "add_column_default_rewrite"
    SET_NOT_NULL = "set_not_null"
    CONSTRAINT_VALIDATION = "constraint_validation"
    FOREIGN_KEY_UNINDEXED = "foreign_key_unindexed"
    UNIQUE_WITHOUT_INDEX = "unique_without_index"
    RENAME_COLUMN = "rename_column"
    RENAME_TABLE = "rename_table"
    CHANGE_COLUMN_TYPE = "change_column_type"
    DROP_COLUMN = "drop_column"
    DROP_TABLE = "drop_table"
    DEPENDENT_OBJECTS = "dependent_objects"
    DROP_INDEX_WITHOUT_CONCURRENTLY = "drop_index_without_concurrently"
    UPDATE_WITHOUT_WHERE = "update_without_where"
    DELETE_WITHOUT_WHERE = "delete_without_where"
    DATA_MIGRATION = "data_migration"
    TRUNCATE = "truncate"
    TABLE_REWRITE = "table_rewrite"
    TABLE_REWRITE_MAINTENANCE = "table_rewrite_maintenance"
    LOCK_TABLE = "lock_table"
    MERGE_ALTERS = "merge_alters"
    MISSING_LOCK_TIMEOUT = "missing_lock_timeout"
    UNRELATED_TABLES = "unrelated_tables"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a migration file, as written, with its 1-based line span."""

    index: int
    sql: str
    line: int
    end_line: int


# shared by every operation that locks nothing else: read-only by its type (a mapping proxy would not pickle)
NO_LOCKS: Mapping[str, LockLevel] = {}


@dataclass(frozen=True, slots=True)
class Operation:
    """What one statement does to the schema or data, and the lock it takes to do it.

    ``kind`` is a stable snake_case name (``add_column``, ``create_index``, ``rename_column`` …) that the
    complexity matrix in the policy is keyed by. ``table`` is schema-qualified when the SQL says so.
    ``details`` carries kind-specific facts (column, index, constraint names, flags) for rendering.
    """

    statement_index: int
    kind: Kind
    summary: str
    table: str | None = None
    lock: LockLevel = LockLevel.NONE
    rewrites_table: bool = False
    scans_table: bool = False
    transactional: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    # other relations the statement locks, and how (a foreign key's referenced table, a partition …)
    other_locks: Mapping[str, LockLevel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.other_locks:  # most lock nothing else: one shared empty mapping, not a dict each
            object.__setattr__(self, "other_locks", NO_LOCKS)

    @property
    def locks(self) -> dict[str, LockLevel]:
        """Every relation this operation locks, with its mode."""
        own = {self.table: self.lock} if self.table and self.lock is not LockLevel.NONE else {}
        return {**own, **self.other_locks}


@dataclass(frozen=True, slots=True)
class Hazard:
    """A zero-downtime risk of one statement (or of the file as a whole when statement_index is None)."""

    code: Code
    severity: Level
    message: str
    safe_alternative: str
    statement_index: int | None = None
    table: str | None = None


@dataclass(frozen=True, slots=True)
class ComplexityReason:
    """Why the migration is at least this complex: one line of the guide's matrix, applied."""

    level: Level
    reason: str
    statement_index: int | None = None


@dataclass(frozen=True)
class TargetFacts:
    """What was known about the target when analysing; ``source`` says where it came from."""

    server_version_num: int | None
    source: str  # "live", "configured" or "unknown"
    row_estimates: dict[str, int] = field(default_factory=dict)
    # with no version known: the oldest major PostgreSQL still supports, which version rules assume
    assumed_version_num: int | None = None
    # settings the bot's runner applies to every segment (policy execution), when the planner said
    runner_settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """What a migration file does, statement by statement, and how risky it is as a whole."""

    statements: list[Statement]
    operations: list[Operation]
    hazards: list[Hazard]
    complexity: Level
    complexity_reasons: list[ComplexityReason]
    target: TargetFacts

    @property
    def tables(self) -> list[str]:
        """Tables touched or locked, in order of first appearance."""
        return list(
            dict.fromkeys(
                t for op in self.operations for t in ([op.table] if op.table else []) + [*op.other_locks]
            )
        )

    @property
    def strongest_lock(self) -> LockLevel:
        return LockLevel.strongest(
            [lock for op in self.operations for lock in [op.lock, *op.other_locks.values()]]
        )

    @property
    def worst_hazard(self) -> Level | None:
        return Level.highest([h.severity for h in self.hazards]) if self.hazards else None

    def to_dict(self, *, lazy: bool = False) -> dict[str, Any]:
        """JSON-ready. ``lazy`` gives the lists that grow with the file as iterators, for a writer that
        streams them (``bot.plan_json.json_pieces``): a 10 MB file's analysis is 150 MB of JSON."""
        many: Callable[[Iterator[dict[str, Any]]], Any] = iter if lazy else list
        return {
            "statements": many(map(flat_dict, self.statements)),
            "operations": many(map(_operation_dict, self.operations)),
            "hazards": many({**flat_dict(h), "severity": h.severity.value} for h in self.hazards),
            "complexity": self.complexity.value,
            "complexity_reasons": many(
                {**flat_dict(r), "level": r.level.value} for r in self.complexity_reasons
            ),
            "target": dict(vars(self.target)),
            "tables": self.tables,
            "strongest_lock": self.strongest_lock.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        return cls(
            statements=[Statement(**s) for s in data["statements"]],
            operations=[
                Operation(
                    **{
                        **o,
                        "kind": Kind(o["kind"]),
                        "lock": LockLevel(o["lock"]),
                        "other_locks": {t: LockLevel(m) for t, m in o.get("other_locks", {}).items()},
                    }
                )
                for o in data["operations"]
            ],
            hazards=[
                Hazard(**{**h, "code": Code(h["code"]), "severity": Level(h["severity"])})
                for h in data["hazards"]
            ],
            complexity=Level(data["complexity"]),
            complexity_reasons=[
                ComplexityReason(**{**r, "level": Level(r["level"])}) for r in data["complexity_reasons"]
            ],
            target=TargetFacts(**data["target"]),
        )


def flat_dict(record: Any) -> dict[str, Any]:
    """A record of slots as a dict: one level of copying is enough (the parts are flat), and much faster
    than ``dataclasses.asdict``."""
    return {name: getattr(record, name) for name in record.__slots__}


def _operation_dict(op: Operation) -> dict[str, Any]:
    return {
        **flat_dict(op),
        "lock": op.lock.value,
        "other_locks": {t: m.value for t, m in op.other_locks.items()},
    }


class SqlSyntaxError(ValueError):
    """The file is not valid PostgreSQL; line and column are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"syntax error at line {line}, column {column}: {message}")
        self.detail = message
        self.line = line
        self.column = column


class UnreadableSql(SqlSyntaxError):
    """The file parses, or would, but cannot be trusted to say what it runs (control characters, psql
    meta-commands, nothing but comments); refused like a syntax error, with its own words."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message, line, column)
        self.args = (f"line {line}, column {column}: {message}",)


@dataclass(frozen=True, slots=True)
class RollbackStep:
    """The inverse of one forward statement, or the reason there is none."""

    statement_index: int
    sql: str | None
    irreversible_reason: str | None = None
    outside: bool = False  # runs after the rollback's transaction (CONCURRENTLY cannot run inside one)


@dataclass(frozen=True)
class Rollback:
    """A rollback script: found beside the migration (``source="file"``) or generated."""

    source: str  # "file" or "generated"
    sql: str
    steps: list[RollbackStep] = field(default_factory=list)
    path: str | None = None

    @property
    def irreversible(self) -> list[RollbackStep]:
        return [s for s in self.steps if s.irreversible_reason]

    @property
    def complete(self) -> bool:
        return not self.irreversible
