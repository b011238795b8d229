"""A migration (or rollback) as the runner executes it: segments of statements, decided when it is planned.

A segment runs in one transaction (``transactional``), or is a single statement that PostgreSQL refuses
inside one (``CREATE INDEX CONCURRENTLY``, ``VACUUM`` …) and runs alone. An explicit ``BEGIN … COMMIT``
block is one segment; statements outside any block run together in one transaction, up to the next
statement that cannot. The segments are stored with the plan, so nothing is re-parsed at run time:
what runs is exactly the approved text, statement by statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from bot.sql.model import Analysis, Operation, Rollback, Statement

# Operation kinds of transaction control: the runner opens and closes transactions itself.
TRANSACTION_CONTROL = "transaction"
OPENERS = frozenset({"begin", "start"})
CLOSERS = frozenset({"commit"})


class Unrunnable(ValueError):
    """The file does something the runner will not replay (a ROLLBACK, a prepared transaction)."""


@dataclass(frozen=True)
class SqlStatement:
    sql: str
    index: int  # position in its file
    line: int  # first line in its file
    undoes: int | None = None  # in a rollback: the forward statement it reverses, when known

    def to_dict(self) -> dict[str, Any]:
        return {"sql": self.sql, "index": self.index, "line": self.line, "undoes": self.undoes}


@dataclass(frozen=True)
class Segment:
    transactional: bool
    statements: tuple[SqlStatement, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"transactional": self.transactional, "statements": [s.to_dict() for s in self.statements]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(data["transactional"], tuple(SqlStatement(**s) for s in data["statements"]))


def split(
    statements: Sequence[Statement], operations: Sequence[Operation], undoes: dict[int, int] | None = None
) -> list[Segment]:
    """The segments of a file from its analysis; ``undoes`` maps a rollback statement to what it reverses."""
    by_statement: dict[int, list[Operation]] = {}
    for op in operations:
        by_statement.setdefault(op.statement_index, []).append(op)
    segments: list[Segment] = []
    current: list[SqlStatement] = []
    explicit = False

    def close() -> None:
        if current:
            segments.append(Segment(True, tuple(current)))
            current.clear()

    for stmt in statements:
        ops = by_statement.get(stmt.index, [])
        control = [op.details.get("transaction") for op in ops if op.kind == TRANSACTION_CONTROL]
        item = SqlStatement(stmt.sql, stmt.index, stmt.line, (undoes or {}).get(stmt.index))
        if control:
            kind = control[0]
            if kind in OPENERS:
                close()
                explicit = True
            elif kind in CLOSERS:
                close()
                explicit = False
            elif kind in {"savepoint", "release", "rollback_to"} and explicit:
                current.append(item)
            else:
                raise Unrunnable(f"line {stmt.line}: `{stmt.sql[:60]}` cannot be replayed by the runner")
            continue
        if not explicit and any(not op.transactional for op in ops):
            close()
            segments.append(Segment(False, (item,)))
            continue
        current.append(item)
    close()
    return segments


def to_data(segments: Sequence[Segment]) -> list[dict[str, Any]]:
    return [s.to_dict() for s in segments]


def from_data(data: Sequence[dict[str, Any]]) -> list[Segment]:
    return [Segment.from_dict(d) for d in data]


def plan_segments(
    forward: Analysis, rollback: Rollback, rollback_analysis: Analysis | None
) -> dict[str, Any]:
    """What a plan stores to be run: the migration's segments, the rollback's, and why it cannot be run,
    if it cannot. A hand-written rollback is split like a migration (its analysis); a generated one is
    taken from its steps, each knowing the forward statement it reverses, so a half-applied migration
    is undone exactly (and the runner sets the rollback's lock_timeout itself)."""
    try:
        if rollback_analysis is not None:
            back = split(rollback_analysis.statements, rollback_analysis.operations)
        else:
            back = _generated(rollback)
        return {
            "forward": to_data(split(forward.statements, forward.operations)),
            "rollback": to_data(back),
            "problem": None,
        }
    except Unrunnable as err:
        return {"forward": [], "rollback": [], "problem": str(err)}


def _generated(rollback: Rollback) -> list[Segment]:
    steps = [step for step in rollback.steps if step.sql]
    text = rollback.sql
    found, taken = [], set()
    # the script lists its steps in order: each is looked for after the one before, and its line counted
    # from there (from the start each time, a 10 MB file's rollback took minutes)
    after, counted, line = 0, 0, 1
    for index, step in enumerate(steps):
        assert step.sql is not None
        at = text.find(step.sql, after)
        if at < 0:  # out of order after all: from the start
            at = text.find(step.sql)
        while at in taken:  # the same inverse twice: the next occurrence
            at = text.find(step.sql, at + 1)
        taken.add(at)
        line = line + text.count("\n", counted, at) if at >= counted else text.count("\n", 0, at) + 1
        after, counted = at + len(step.sql), at
        found.append(SqlStatement(step.sql.strip().rstrip(";"), index, line, step.statement_index))
    # in the steps' order: each run of steps that may share a transaction is one, a CONCURRENTLY step alone
    segments: list[Segment] = []
    for outside, run in groupby(zip(found, steps, strict=True), key=lambda pair: pair[1].outside):
        statements = tuple(statement for statement, _ in run)
        segments += [Segment(False, (s,)) for s in statements] if outside else [Segment(True, statements)]
    return segments
