"""Value types of the SQL analysis: what each statement does, what it locks, what it risks.

Plain frozen dataclasses, free of pglast and Slack, so that plans can be stored as JSON,
rendered by any front end, and compared in tests.
"""

from __future__ import annotations

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
        return list(LockLevel).index(self)

    @property
    def blocks_writes(self) -> bool:
        """SHARE and stronger conflict with ROW EXCLUSIVE: INSERT/UPDATE/DELETE wait."""
        return self.rank >= LockLevel.SHARE.rank

    @classmethod
    def strongest(cls, locks: list[LockLevel]) -> LockLevel:
        return max(locks, key=lambda lk: lk.rank, default=cls.NONE)


@dataclass(frozen=True)
class Statement:
    """One statement of a migration file, as written, with its 1-based line span."""

    index: int
    sql: str
    line: int
    end_line: int


@dataclass(frozen=True)
class Operation:
    """What one statement does to the schema or data, and the lock it takes to do it.

    ``kind`` is a stable snake_case name (``add_column``, ``create_index``, ``rename_column`` …) that the
    complexity matrix in the policy is keyed by. ``table`` is schema-qualified when the SQL says so.
    ``details`` carries kind-specific facts (column, index, constraint names, flags) for rendering.
    """

    statement_index: int
    kind: str
    summary: str
    table: str | None = None
    lock: LockLevel = LockLevel.NONE
    rewrites_table: bool = False
    scans_table: bool = False
    transactional: bool = True
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hazard:
    """A zero-downtime risk of one statement (or of the file as a whole when statement_index is None)."""

    code: str
    severity: Level
    message: str
    safe_alternative: str
    statement_index: int | None = None
    table: str | None = None


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Analysis:
    statements: list[Statement]
    operations: list[Operation]
    hazards: list[Hazard]
    complexity: Level
    complexity_reasons: list[ComplexityReason]
    target: TargetFacts

    @property
    def tables(self) -> list[str]:
        """Tables touched, in order of first appearance."""
        return list(dict.fromkeys(op.table for op in self.operations if op.table))

    @property
    def strongest_lock(self) -> LockLevel:
        return LockLevel.strongest([op.lock for op in self.operations])

    @property
    def worst_hazard(self) -> Level | None:
        return Level.highest([h.severity for h in self.hazards]) if self.hazards else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; one level of copying is enough (the parts are flat), and much faster than asdict."""
        return {
            "statements": [dict(vars(s)) for s in self.statements],
            "operations": [{**vars(o), "lock": o.lock.value} for o in self.operations],
            "hazards": [{**vars(h), "severity": h.severity.value} for h in self.hazards],
            "complexity": self.complexity.value,
            "complexity_reasons": [{**vars(r), "level": r.level.value} for r in self.complexity_reasons],
            "target": dict(vars(self.target)),
            "tables": self.tables,
            "strongest_lock": self.strongest_lock.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Analysis:
        return cls(
            statements=[Statement(**s) for s in data["statements"]],
            operations=[Operation(**{**o, "lock": LockLevel(o["lock"])}) for o in data["operations"]],
            hazards=[Hazard(**{**h, "severity": Level(h["severity"])}) for h in data["hazards"]],
            complexity=Level(data["complexity"]),
            complexity_reasons=[
                ComplexityReason(**{**r, "level": Level(r["level"])}) for r in data["complexity_reasons"]
            ],
            target=TargetFacts(**data["target"]),
        )


class SqlSyntaxError(ValueError):
    """The file is not valid PostgreSQL; line and column are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"syntax error at line {line}, column {column}: {message}")
        self.detail = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
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
