"""Rollback rehearsal: on a scratch copy of the target, apply the migration, check it, roll it back, compare
the schema and row counts with what they were, and apply it again, measuring real locks and timings.

Phases, each passed or failed with its error and its duration: synthetic data (optional), apply,
integrity, rollback, compare, apply again. A phase that cannot mean anything after an earlier failure is
NOT_CHECKED (no rollback after a migration that did not apply, nothing compared after a rollback that
failed). The rehearsal passes when every phase does and no statement, nor the whole migration, runs past
the time limit (the policy's "Performance acceptable (<30s for migration)").

Lock mismatches never fail it: they say the analysis the plan shows was wrong, not that the migration is;
they are listed for the people approving it. Data migrations run as single statements here, not in the
batches the runner uses on the target.

Checklist items it proves, and why only those: "Rollback script generated and tested" (the rollback ran
and gave back the exact schema and row counts, and the migration applied again after it); "Performance
impact assessed" only when the copy held rows (the target's, or synthetic ones), with the timings and locks
as evidence. Not "Migration tested in local development environment" nor anything of staging: a scratch
copy is neither, and no application ran against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from bot.execution.checks import Outcome
from bot.execution.errors import StepFailed
from bot.execution.integrity import check_integrity, row_counts, validated_constraints
from bot.execution.observed import StatementRun, run_observed
from bot.execution.scratch import Scratch
from bot.execution.segments import Segment
from bot.execution.synthetic import fill_tables
from bot.execution.target import connected
from bot.redact import redact_value
from bot.sql.fingerprint import USER_SCHEMAS, Change, Fingerprint, fingerprint_changes, schema_fingerprint
from bot.sql.model import Analysis, LockLevel

APPLICATION = "migrate-bot rehearsal"
SYNTHETIC, APPLY, INTEGRITY, ROLLBACK, COMPARE, APPLY_AGAIN = (
    "synthetic data",
    "apply",
    "integrity",
    "rollback",
    "compare",
    "apply again",
)
ROLLBACK_TESTED = "Rollback script generated and tested"
PERFORMANCE_ASSESSED = "Performance impact assessed"
PASSING = (Outcome.PASSED, Outcome.NOTED)
TABLES = f"""
WITH s AS ({USER_SCHEMAS})
SELECT oid::regclass::text FROM pg_class
WHERE relkind = 'r' AND relnamespace IN (SELECT oid FROM s) ORDER BY 1
"""
RELKINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
}


@dataclass(frozen=True)
class Phase:
    name: str
    outcome: Outcome
    seconds: float = 0.0
    error: str | None = None  # redacted
    details: tuple[str, ...] = ()  # what it found, one sentence each
    statements: tuple[StatementRun, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "details": list(self.details),
            "statements": [s.to_dict() for s in self.statements],
        }


@dataclass(frozen=True)
class RehearsalReport:
    phases: tuple[Phase, ...]
    max_duration_seconds: float
    data: str | None  # whose rows the copy held, when it held any
    seconds: float
    scratch: Scratch | None = None

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    @property
    def passed(self) -> bool:
        return all(p.outcome in PASSING for p in self.phases) and not self.over_limit

    @property
    def statements(self) -> tuple[StatementRun, ...]:
        """The migration's statements as they first ran: the measured ones."""
        applied = self.phase(APPLY)
        return applied.statements if applied else ()

    @property
    def migration_seconds(self) -> float:
        return sum(s.seconds for s in self.statements)

    @property
    def over_limit(self) -> list[str]:
        limit = self.max_duration_seconds
        slow = [
            f"L{s.line} took {s.seconds:.1f} s, over the {limit:g} s limit: {s.sql}"
            for s in self.statements
            if s.seconds > limit
        ]
        if self.migration_seconds > limit:
            slow.append(f"the migration took {self.migration_seconds:.1f} s, over the {limit:g} s limit")
        return slow

    @property
    def lock_mismatches(self) -> list[str]:
        return [
            f"L{s.line}: {lock.relation}: the analysis says "
            f"{'no lock' if lock.analysed is LockLevel.NONE else lock.analysed}, PostgreSQL took "
            f"{lock.observed or 'no new lock'}: {s.sql}"
            for s in self.statements
            for lock in s.locks
            if lock.mismatch
        ]

    @property
    def rewritten_tables(self) -> list[str]:
        return list(dict.fromkeys(table for s in self.statements for table in s.rewritten))

    @property
    def differences(self) -> tuple[str, ...]:
        compared = self.phase(COMPARE)
        return compared.details if compared else ()

    @property
    def proves(self) -> dict[str, str]:
        """Checklist items this rehearsal is evidence for, each with that evidence."""
        outcome = {p.name: p.outcome for p in self.phases}
        where = f"a scratch copy ({self.scratch.strategy.value})" if self.scratch else "a scratch copy"
        found = {}
        if all(outcome.get(name) is Outcome.PASSED for name in (ROLLBACK, COMPARE, APPLY_AGAIN)):
            found[ROLLBACK_TESTED] = (
                f"rehearsed on {where}: the rollback gave back the schema and the row counts of every table "
                "exactly, and the migration applied again after it"
            )
        if self.data and outcome.get(APPLY) is Outcome.PASSED and self.statements:
            longest = max(self.statements, key=lambda s: s.seconds)
            held = [
                (lock.observed, lock.relation)
                for s in self.statements
                for lock in s.locks
                if lock.observed and not lock.created
            ]
            strongest = max(held, key=lambda h: h[0].rank, default=None)
            found[PERFORMANCE_ASSESSED] = (
                f"rehearsed on {where} with {self.data}: the migration took {self.migration_seconds:.2f} s "
                f"(limit {self.max_duration_seconds:g} s; longest L{longest.line}, {longest.seconds:.2f} s)"
                + (f"; strongest lock {strongest[0]} on {strongest[1]}" if strongest else "")
                + (f"; rewrote {', '.join(self.rewritten_tables)}" if self.rewritten_tables else "")
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every string redacted."""
        return redact_value(
            {
                "passed": self.passed,
                "seconds": round(self.seconds, 3),
                "migration_seconds": round(self.migration_seconds, 3),
                "max_duration_seconds": self.max_duration_seconds,
                "data": self.data,
                "scratch": self.scratch.to_dict() if self.scratch else None,
                "phases": [p.to_dict() for p in self.phases],
                "over_limit": self.over_limit,
                "lock_mismatches": self.lock_mismatches,
                "rewritten_tables": self.rewritten_tables,
                "differences": list(self.differences),
                "proves": self.proves,
            }
        )


def rehearse(
    dsn: str,
    forward: Sequence[Segment],
    rollback: Sequence[Segment],
    *,
    analysis: Analysis,
    lock_timeout: str,
    statement_timeout: str,
    rows: int | None = None,
    progress: Callable[[str], None] | None = None,
    rollback_analysis: Analysis | None = None,
    max_duration_seconds: float = 30.0,
    scratch: Scratch | None = None,
) -> RehearsalReport:
    """Rehearse the migration (``forward``, as analysed by ``analysis``) and its ``rollback`` on ``dsn``, a
    scratch copy: it is changed for good. ``rows``: synthetic rows for each table the migration touches.

    The statements' errors are in the report; only a connection refused or a catalog that cannot be read
    raises (StepFailed).
    """
    started = time.monotonic()

    def say(message: str) -> None:
        if progress:
            progress(f"rehearsal: {message}")

    timeouts = {"lock_timeout": lock_timeout, "statement_timeout": statement_timeout}
    phases: list[Phase] = []
    data = "the target's rows" if scratch and scratch.has_data else None
    with connected(dsn, application_name=APPLICATION) as conn:
        if rows:
            filled, added = _synthetic(conn, dsn, analysis.tables, rows, say)
            phases.append(filled)
            if added and data is None:
                data = f"{added:,} synthetic rows in the tables the migration touches"
        before, counts = schema_fingerprint(conn), _row_counts(conn, dsn)
        phases.append(_run(APPLY, conn, dsn, forward, analysis, timeouts, say))
        if phases[-1].outcome is Outcome.FAILED:
            phases += _skipped((INTEGRITY, ROLLBACK, COMPARE, APPLY_AGAIN), "the migration did not apply")
        else:
            applied = schema_fingerprint(conn)
            phases.append(_integrity(dsn, analysis, say))
            rolled_back = _run(ROLLBACK, conn, dsn, rollback, rollback_analysis, timeouts, say)
            phases.append(rolled_back)
            if rolled_back.outcome is Outcome.FAILED:
                phases += _skipped((COMPARE, APPLY_AGAIN), "the rollback failed")
            else:
                phases.append(_compare(conn, dsn, (before, applied), counts, say))
                phases.append(_run(APPLY_AGAIN, conn, dsn, forward, analysis, timeouts, say))
    report = RehearsalReport(tuple(phases), max_duration_seconds, data, time.monotonic() - started, scratch)
    say(f"{'passed' if report.passed else 'failed'} in {report.seconds:.1f} s")
    return report


def _synthetic(
    conn: psycopg.Connection, dsn: str, tables: list[str], rows: int, say: Callable[[str], None]
) -> tuple[Phase, int]:
    """The phase, and how many rows it added."""
    started = time.monotonic()
    fills = fill_tables(conn, dsn, tables, rows)
    for fill in fills:
        say(fill.sentence())
    outcome = Outcome.NOTED if any(f.skipped for f in fills) else Outcome.PASSED
    details = tuple(f.sentence() for f in fills)
    return Phase(SYNTHETIC, outcome, time.monotonic() - started, details=details), sum(f.rows for f in fills)


def _run(
    name: str,
    conn: psycopg.Connection,
    dsn: str,
    segments: Sequence[Segment],
    analysis: Analysis | None,
    timeouts: dict[str, str],
    say: Callable[[str], None],
) -> Phase:
    started = time.monotonic()
    operations = analysis.operations if analysis else None
    runs, error = run_observed(conn, dsn, segments, operations, **timeouts, say=lambda m: say(f"{name}: {m}"))
    outcome = Outcome.FAILED if error else Outcome.PASSED
    say(f"{name}: {outcome.value}" + (f": {error}" if error else ""))
    return Phase(name, outcome, time.monotonic() - started, error, statements=tuple(runs))


def _integrity(dsn: str, analysis: Analysis, say: Callable[[str], None]) -> Phase:
    started = time.monotonic()
    try:
        checks = check_integrity(dsn, validated=validated_constraints(analysis.operations))
    except StepFailed as err:  # a query refused or past its statement timeout
        return Phase(INTEGRITY, Outcome.FAILED, time.monotonic() - started, err.message)
    shown = [c.sentence for c in checks if c.outcome is not Outcome.PASSED]
    passed = len(checks) - len(shown)
    details = (*shown, f"{passed} check(s) passed") if passed else tuple(shown)
    outcome = Outcome.FAILED if any(c.failed for c in checks) else Outcome.PASSED
    say(f"{INTEGRITY}: {outcome.value}")
    return Phase(INTEGRITY, outcome, time.monotonic() - started, details=details)


def _compare(
    conn: psycopg.Connection,
    dsn: str,
    fingerprints: tuple[Fingerprint, Fingerprint],
    counts: dict[str, int | None],
    say: Callable[[str], None],
) -> Phase:
    started = time.monotonic()
    before, applied = fingerprints
    differences = _in_words(fingerprint_changes(before, schema_fingerprint(conn)), applied)
    try:
        now = row_counts(dsn, list(counts))
    except StepFailed as err:
        return Phase(COMPARE, Outcome.FAILED, time.monotonic() - started, err.message, tuple(differences))
    differences += [
        f"table {table} has {now[table]:,} rows after the rollback, {count:,} before the migration"
        for table, count in counts.items()
        if count is not None and now[table] is not None and now[table] != count
    ]
    outcome = Outcome.FAILED if differences else Outcome.PASSED
    say(f"{COMPARE}: {outcome.value}" + "".join(f"\n  {d}" for d in differences))
    error = f"the rollback left {len(differences)} difference(s)" if differences else None
    return Phase(COMPARE, outcome, time.monotonic() - started, error, tuple(differences))


def _in_words(changes: list[Change], applied: Fingerprint) -> list[str]:
    """What a rollback left different, one sentence an object; ``applied`` is the fingerprint after the
    migration, to tell what the rollback forgot from what it made. The parts of a table that is still
    there (or missing) are not listed again."""
    whole = {c.name for c in changes if c.category == "relations" and (c.before is None or c.after is None)}
    lines = []
    for c in changes:
        if c.category != "relations" and any(_part_of(c, relation) for relation in whole):
            continue
        definition = c.after if c.before is None else c.before
        kind = RELKINDS.get((definition or " ")[0], "relation") if c.category == "relations" else c.kind
        if c.before is None:
            still = c.name in applied.get(c.category, {})
            lines.append(f"{kind} {c.name} {'still exists' if still else 'exists after the rollback only'}")
        elif c.after is None:
            lines.append(f"{kind} {c.name} is missing")
        else:
            lines.append(
                f"{kind} {c.name} differs: {c.before} before the migration, {c.after} after the rollback"
            )
    return lines


def _part_of(change: Change, relation: str) -> bool:
    """The change is of ``relation`` itself (its view definition …) or of one of its parts."""
    if change.name == relation or change.name.startswith((f"{relation}.", f"{relation} ")):
        return True
    definition = change.before or change.after or ""
    if change.category == "indexes":
        return f" {relation} USING " in definition or f".{relation} USING " in definition
    return change.category == "sequences" and f"OWNED BY {relation}." in definition


def _row_counts(conn: psycopg.Connection, dsn: str) -> dict[str, int | None]:
    tables = [name for (name,) in conn.execute(TABLES, {"schemas": None}).fetchall()]
    return row_counts(dsn, tables)


def _skipped(names: Sequence[str], why: str) -> list[Phase]:
    return [Phase(name, Outcome.NOT_CHECKED, error=why) for name in names]
