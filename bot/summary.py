"""What a plan's message shows of its analysis and rollback, drawn once when it is planned.

A stored plan is redrawn (each click, each step of a run) from this, never from its analysis: a 10 MB
file's analysis is 150 MB of JSON and took 25 s to rebuild for every redraw. The lists that grow with the
file keep their first ``SHOWN`` lines and their length; Slack shows 12 of each, so its message is the
same as the whole analysis would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, NamedTuple, TypeVar, overload

from bot.sql.model import Analysis, Hazard, Level, LockLevel, Operation, Rollback, TargetFacts

# Lines of each list a stored plan keeps for its message (Slack's sections show 12).
SHOWN = 50

T = TypeVar("T")
S = TypeVar("S")


class HazardLine(NamedTuple):
    """A hazard as one line, and what to write instead (each front end sets it off its own way)."""

    text: str
    alternative: str


class MappedLines(Sequence[T]):
    """``line`` of each item of a list, made as it is read: a plan printed whole shows each of a 10 MB
    file's lines once, and making them all first doubled the memory printing it took."""

    __slots__ = ("_line", "_source")

    def __init__(self, source: Sequence[S], line: Callable[[S], T]) -> None:
        self._source: Sequence[Any] = source
        self._line: Callable[[Any], T] = line

    def __len__(self) -> int:
        return len(self._source)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(map(self._line, self._source[index]))
        return self._line(self._source[index])

    def __iter__(self) -> Iterator[T]:
        return map(self._line, self._source)


@dataclass(frozen=True)
class Listing(Generic[T]):
    """The first lines of a list and how many it has in all."""

    lines: Sequence[T]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.lines)

    def joined(self) -> str:
        """The lines in one, and how many more there are: ``a, b and 3 more``."""
        return ", ".join(map(str, self.lines)) + (f" and {self.more} more" if self.more else "")

    @classmethod
    def of(cls, lines: Iterable[T], total: int, limit: int | None) -> Listing[T]:
        return cls(tuple(islice(lines, limit)), total)

    @classmethod
    def mapped(cls, source: Sequence[S], line: Callable[[S], T], limit: int | None) -> Listing[T]:
        """``line`` of each item of ``source``: the first ``limit`` made now (what a stored plan keeps), or,
        with no limit (a plan printed once), all of them as they are read."""
        lines = MappedLines(source, line) if limit is None else tuple(map(line, source[:limit]))
        return cls(lines, len(source))

    def to_dict(self) -> dict[str, Any]:
        return {"lines": list(self.lines), "total": self.total}

    @classmethod
    def from_dict(cls, data: dict[str, Any], line: Callable[[Any], T]) -> Listing[T]:
        return cls(tuple(map(line, data["lines"])), data["total"])


@dataclass(frozen=True)
class PlanSummary:
    """The analysis as the plan's message shows it; ``blocks_writes`` decides the proposed procedure."""

    complexity: Level
    strongest_lock: LockLevel
    statements: int
    blocks_writes: bool
    target: str
    tables: Listing[str]
    hazards: Listing[HazardLine]
    reasons: Listing[str]
    operations: Listing[str]
    rollback: Listing[str]  # where the rollback comes from, then what it cannot undo
    rollback_hazards: Listing[str]

    @classmethod
    def of(
        cls, analysis: Analysis, rollback: Rollback, rollback_analysis: Analysis | None, *, limit: int | None
    ) -> PlanSummary:
        """``limit`` lines of each list; None keeps them all (a plan printed once, never stored)."""
        a, estimates = analysis, analysis.target.row_estimates
        irreversible = rollback.irreversible
        ra = rollback_analysis
        rollback_hazards = [hazard_line(h, ra) for h in ra.hazards] if ra else []
        return cls(
            complexity=a.complexity,
            strongest_lock=a.strongest_lock,
            statements=len(a.statements),
            blocks_writes=blocks_writes(a),
            target=target_line(a.target),
            tables=Listing.mapped(
                a.tables, lambda t: f"{t} (~{estimates[t]:,} rows)" if t in estimates else t, limit
            ),
            hazards=Listing.mapped(
                a.hazards, lambda h: HazardLine(hazard_line(h, a), h.safe_alternative), limit
            ),
            reasons=Listing.mapped(a.complexity_reasons, lambda r: f"{r.level.label}: {r.reason}", limit),
            operations=Listing.mapped(a.operations, lambda op: operation_line(op, a), limit),
            rollback=Listing.of(
                [rollback_line(rollback)] + [f"MANUAL: {s.irreversible_reason}" for s in irreversible],
                1 + len(irreversible),
                limit,
            ),
            rollback_hazards=Listing.of(rollback_hazards, len(rollback_hazards), limit),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "complexity": self.complexity.value,
            "strongest_lock": self.strongest_lock.value,
            "statements": self.statements,
            "blocks_writes": self.blocks_writes,
            "target": self.target,
            "tables": self.tables.to_dict(),
            "hazards": self.hazards.to_dict(),
            "reasons": self.reasons.to_dict(),
            "operations": self.operations.to_dict(),
            "rollback": self.rollback.to_dict(),
            "rollback_hazards": self.rollback_hazards.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanSummary:
        return cls(
            complexity=Level(data["complexity"]),
            strongest_lock=LockLevel(data["strongest_lock"]),
            statements=data["statements"],
            blocks_writes=data["blocks_writes"],
            target=data["target"],
            tables=Listing.from_dict(data["tables"], str),
            hazards=Listing.from_dict(data["hazards"], lambda pair: HazardLine(*pair)),
            reasons=Listing.from_dict(data["reasons"], str),
            operations=Listing.from_dict(data["operations"], str),
            rollback=Listing.from_dict(data["rollback"], str),
            rollback_hazards=Listing.from_dict(data["rollback_hazards"], str),
        )


def blocks_writes(analysis: Analysis) -> bool:
    """True when a statement takes a lock that holds the application's writes."""
    return any(op.lock.blocks_writes and op.lock is not LockLevel.NONE for op in analysis.operations)


HAZARD_ICON = {Level.LOW: "ℹ️", Level.MEDIUM: "⚠️", Level.HIGH: "⛔"}


def target_line(target: TargetFacts) -> str:
    if target.server_version_num:
        major = target.server_version_num // 10000
        where = {"live": "read from the target", "configured": "configured; target unreachable"}[
            target.source
        ]
        return f"PostgreSQL {major} ({where})"
    if target.assumed_version_num:
        return (
            f"PostgreSQL version unknown (target unreachable, none configured): version-dependent rules "
            f"assume {target.assumed_version_num // 10000}, the oldest major still supported"
        )
    return "PostgreSQL version unknown (target unreachable, none configured)"


def operation_line(op: Operation, analysis: Analysis) -> str:
    stmt = analysis.statements[op.statement_index]
    flags = [f for f, on in (("rewrites table", op.rewrites_table), ("scans table", op.scans_table)) if on]
    if not op.transactional:
        flags.append("outside transaction")
    lock = f"{op.lock.value} lock" if op.lock.value != "none" else "no table lock"
    extra = f" ({', '.join(flags)})" if flags else ""
    return f"L{stmt.line}: {op.summary} · {lock}{extra}"


def hazard_line(hazard: Hazard, analysis: Analysis) -> str:
    where = ""
    if hazard.statement_index is not None:
        where = f"L{analysis.statements[hazard.statement_index].line}: "
    return f"{HAZARD_ICON[hazard.severity]} {hazard.severity.label} · {where}{hazard.message}"


def rollback_line(rollback: Rollback) -> str:
    if rollback.source == "file":
        return f"Rollback script found: {rollback.path.rsplit('/', 1)[-1] if rollback.path else 'file'}"
    if rollback.complete:
        return "Rollback script generated: every statement is reversible"
    return (
        f"Rollback script generated, {len(rollback.irreversible)} statement(s) cannot be reversed "
        "from SQL alone: restore from backup or write this rollback by hand"
    )
