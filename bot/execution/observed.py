"""Running segments on a scratch copy while measuring each statement: its time, the locks it took, and the
tables it rewrote. Never on the target: the catalog queries between statements lengthen its transactions.

Locks are read from ``pg_locks`` for our own backend right after each statement, before its transaction
commits; what the statement took is what was not held before it. A statement outside a transaction
(``CREATE INDEX CONCURRENTLY``) holds its locks only while it runs, so a second connection looks at them
every few milliseconds instead; one that finishes between two looks shows no lock ("not seen"). Each
relation's strongest new mode is set against the strongest the analysis gave the statement's operations on
it (a foreign key's on both tables, as PostgreSQL takes it). No mismatch: any lock on a relation created in
the same transaction (no other session sees it), a mode the transaction held already, an ACCESS SHARE on
a relation the analysis does not name (a read). A rewrite is a new ``relfilenode``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from bot.execution.output import shown
from bot.execution.segments import Segment, SqlStatement
from bot.execution.target import connect, dsn_secrets, error_text, set_timeouts
from bot.sql.fingerprint import USER_SCHEMAS
from bot.sql.model import LockLevel, Operation

WATCH_SECONDS = 0.005
SQL_SHOWN = 300  # characters of a statement kept in the report
MODES = {level.value.title().replace(" ", "") + "Lock": level for level in LockLevel}  # pg_locks' names
# Tables, views and materialized views of the user schemas: what locks and rewrites are reported for.
RELATIONS = f"""
WITH s AS ({USER_SCHEMAS})
SELECT c.oid, c.oid::regclass::text, c.relfilenode FROM pg_class c
WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind IN ('r', 'p', 'm', 'f', 'v')
"""
HELD = """
SELECT relation, mode FROM pg_locks
WHERE pid = %s AND locktype = 'relation' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
RESOLVE = "SELECT to_regclass(name)::oid FROM unnest(%s::text[]) AS name"

Relations = dict[int, tuple[str, int]]  # oid -> (name, relfilenode)
Held = dict[int, frozenset[LockLevel]]  # oid -> modes held


@dataclass(frozen=True)
class LockSeen:
    """What one statement locked on one relation, against what its analysis said."""

    relation: str
    analysed: LockLevel | None  # None: no analysis of this statement; NONE: the analysis does not name it
    observed: LockLevel | None  # the strongest mode the statement took; None: none taken (or none seen)
    mismatch: bool
    note: str | None = None  # why a difference is not a mismatch
    created: bool = False  # by this transaction: no other session sees it, nor waits for its locks

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "analysed": self.analysed.value if self.analysed else None,
            "observed": self.observed.value if self.observed else None,
            "mismatch": self.mismatch,
            "note": self.note,
            "created": self.created,
        }


@dataclass(frozen=True)
class StatementRun:
    index: int
    line: int
    sql: str  # trimmed and redacted
    transactional: bool
    seconds: float
    locks: tuple[LockSeen, ...] = ()
    rewritten: tuple[str, ...] = ()  # tables (and materialized views) given new files
    error: str | None = None  # redacted, with its SQLSTATE

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "sql": self.sql,
            "transactional": self.transactional,
            "seconds": round(self.seconds, 4),
            "locks": [lock.to_dict() for lock in self.locks],
            "rewritten": list(self.rewritten),
            "error": self.error,
        }


def run_observed(
    conn: psycopg.Connection,
    dsn: str,
    segments: Sequence[Segment],
    operations: Sequence[Operation] | None,
    *,
    lock_timeout: str,
    statement_timeout: str,
    say: Callable[[str], None],
) -> tuple[list[StatementRun], str | None]:
    """Run ``segments`` on ``conn`` (autocommit, connected to ``dsn``) and stop at the first error.

    ``operations``: the analysis of these statements (None: none, the locks are only observed). Returns
    each statement run (a failed one last, with its error) and the error that stopped the run, or None.
    """
    observer = _Observer(conn, dsn, operations, (lock_timeout, statement_timeout))
    runs: list[StatementRun] = []
    for number, segment in enumerate(segments, 1):
        error = observer.segment(segment, runs)
        if error:
            return runs, error
        kind = "one transaction" if segment.transactional else "outside a transaction"
        say(f"segment {number}/{len(segments)} done ({len(segment.statements)} statement(s), {kind})")
    return runs, None


def _judge(
    analysed: LockLevel | None,
    before: frozenset[LockLevel],
    after: frozenset[LockLevel],
    *,
    created: bool,
    watched: bool,
) -> tuple[LockLevel | None, bool, str | None]:
    """(observed, mismatch, note) for one relation: ``before`` and ``after`` are the modes our backend held
    on it before and after the statement (``after``: every mode seen while it ran, when ``watched``)."""
    taken = after - before
    observed = LockLevel.strongest(list(taken)) if taken else None
    earlier = f"{analysed} held already, from an earlier statement of the transaction"
    if analysed is None:
        return observed, False, None
    if created:
        return observed, False, "created in this transaction: no other session sees it yet"
    if observed is None:
        if analysed is LockLevel.NONE:
            return None, False, None
        if watched:
            return None, False, "not seen: the statement finished between two looks"
        return None, analysed not in before, earlier if analysed in before else None
    if observed is analysed:
        return observed, False, None
    if observed.rank < analysed.rank and analysed in before:
        return observed, False, earlier
    if analysed is LockLevel.NONE and observed is LockLevel.ACCESS_SHARE:
        return observed, False, "a read: it conflicts only with ACCESS EXCLUSIVE"
    return observed, True, None


class _Failed(Exception):
    """A statement failed; carries its run (with the error) out of the transaction, rolling it back."""

    def __init__(self, run: StatementRun) -> None:
        super().__init__(run.error)
        self.run = run


class _Observer:
    def __init__(
        self,
        conn: psycopg.Connection,
        dsn: str,
        operations: Sequence[Operation] | None,
        timeouts: tuple[str, str],
    ) -> None:
        self.conn, self.dsn, self.timeouts = conn, dsn, timeouts
        self.pid = conn.info.backend_pid
        self.secrets = dsn_secrets(dsn)
        self.operations: dict[int, list[Operation]] | None = None
        if operations is not None:
            self.operations = {}
            for op in operations:
                self.operations.setdefault(op.statement_index, []).append(op)

    def segment(self, segment: Segment, runs: list[StatementRun]) -> str | None:
        """Run one segment, adding each statement's run to ``runs``; the error that stopped it, or None."""
        try:
            if not segment.transactional:
                set_timeouts(self.conn, self.timeouts, local=False)
                runs.append(self._alone(segment.statements[0]))
                return None
            with self.conn.transaction():
                set_timeouts(self.conn, self.timeouts, local=True)
                committed = before = self._relations()  # as every other session sees them
                held = self._held()
                for stmt in segment.statements:
                    levels = self._levels(stmt)
                    ahead = self._resolved(levels)
                    seconds = self._timed(stmt, transactional=True)
                    after, held_after = self._relations(), self._held()
                    analysed = _merged(ahead, self._resolved(levels))
                    created = after.keys() - committed.keys()
                    runs.append(
                        self._run(stmt, True, seconds, (before, after), (held, held_after), analysed, created)
                    )
                    before, held = after, held_after
        except _Failed as failed:
            runs.append(failed.run)
            return failed.run.error
        except psycopg.Error as err:  # our own queries, or the COMMIT
            return error_text(err, self.dsn)
        return None

    def _alone(self, stmt: SqlStatement) -> StatementRun:
        levels = self._levels(stmt)
        ahead, before = self._resolved(levels), self._relations()
        with _Watch(self.dsn, self.pid) as watch:
            seconds = self._timed(stmt, transactional=False)
        after = self._relations()
        analysed = _merged(ahead, self._resolved(levels))
        created = after.keys() - before.keys()
        return self._run(
            stmt, False, seconds, (before, after), ({}, watch.seen), analysed, created, watched=True
        )

    def _timed(self, stmt: SqlStatement, *, transactional: bool) -> float:
        started = time.monotonic()
        try:
            self.conn.execute(stmt.sql)
        except psycopg.Error as err:
            error = error_text(err, self.dsn)
            raise _Failed(
                StatementRun(
                    stmt.index,
                    stmt.line,
                    self._shown(stmt),
                    transactional,
                    time.monotonic() - started,
                    error=error,
                )
            ) from None
        return time.monotonic() - started

    def _run(
        self,
        stmt: SqlStatement,
        transactional: bool,
        seconds: float,
        relations: tuple[Relations, Relations],
        held: tuple[Held, Held],
        analysed: dict[int, LockLevel] | None,
        created: set[int],
        *,
        watched: bool = False,
    ) -> StatementRun:
        (before, after), (held_before, held_after) = relations, held
        names = {oid: name for oid, (name, _) in {**after, **before}.items()}  # a renamed table as it was
        none: frozenset[LockLevel] = frozenset()
        touched = set(analysed or ()) | {
            oid for oid, modes in held_after.items() if modes - held_before.get(oid, none)
        }
        locks = []
        for oid in sorted(touched & names.keys(), key=names.__getitem__):
            said = None if analysed is None else analysed.get(oid, LockLevel.NONE)
            observed, mismatch, note = _judge(
                said,
                held_before.get(oid, none),
                held_after.get(oid, none),
                created=oid in created,
                watched=watched,
            )
            if said is not LockLevel.NONE or observed is not None:
                locks.append(LockSeen(names[oid], said, observed, mismatch, note, oid in created))
        rewritten = sorted(
            names[oid]
            for oid in before.keys() & after.keys()
            if before[oid][1] and after[oid][1] and before[oid][1] != after[oid][1]
        )
        return StatementRun(
            stmt.index, stmt.line, self._shown(stmt), transactional, seconds, tuple(locks), tuple(rewritten)
        )

    def _levels(self, stmt: SqlStatement) -> dict[str, LockLevel] | None:
        """The strongest lock the analysis gives the statement's operations on each table they name."""
        if self.operations is None:
            return None
        levels: dict[str, LockLevel] = {}
        for op in self.operations.get(stmt.index, []):
            for table in _locked_tables(op):
                levels[table] = LockLevel.strongest([levels.get(table, LockLevel.NONE), op.lock])
        return levels

    def _resolved(self, levels: dict[str, LockLevel] | None) -> dict[int, LockLevel] | None:
        """``levels`` by relation OID, for the names that exist now (a table a statement creates exists
        only after it, one it drops only before)."""
        if not levels:
            return None if levels is None else {}
        oids = [row[0] for row in self.conn.execute(RESOLVE, (list(levels),)).fetchall()]
        return {oid: level for oid, level in zip(oids, levels.values(), strict=True) if oid is not None}

    def _relations(self) -> Relations:
        params = {"schemas": None}
        return {oid: (name, node) for oid, name, node in self.conn.execute(RELATIONS, params).fetchall()}

    def _held(self) -> Held:
        return _held_by(self.conn, self.pid)

    def _shown(self, stmt: SqlStatement) -> str:
        return shown(stmt.sql, self.secrets, SQL_SHOWN)


def _held_by(conn: psycopg.Connection, pid: int) -> Held:
    """The relation locks backend ``pid`` holds, by relation."""
    held: dict[int, set[LockLevel]] = {}
    for oid, mode in conn.execute(HELD, (pid,)).fetchall():
        if mode in MODES:  # not a predicate lock (SIReadLock) of a serializable transaction
            held.setdefault(oid, set()).add(MODES[mode])
    return {oid: frozenset(modes) for oid, modes in held.items()}


def _merged(
    ahead: dict[int, LockLevel] | None, after: dict[int, LockLevel] | None
) -> dict[int, LockLevel] | None:
    if ahead is None or after is None:
        return None
    return {
        oid: LockLevel.strongest([ahead.get(oid, LockLevel.NONE), after.get(oid, LockLevel.NONE)])
        for oid in ahead.keys() | after.keys()
    }


def _locked_tables(op: Operation) -> list[str]:
    """The relations an operation's lock is taken on: its table, and a foreign key's referenced table."""
    tables = [op.table] if op.table else []
    if op.details.get("constraint_type") == "foreign_key" and op.details.get("references"):
        tables.append(op.details["references"])
    return tables


class _Watch:
    """A second connection noting the relation locks a backend holds, every few milliseconds, until the
    block ends: the locks of a statement outside a transaction, held only while it runs."""

    def __init__(self, dsn: str, pid: int) -> None:
        self.conn = connect(dsn, application_name="migrate-bot rehearsal lock watch")
        self.pid = pid
        self.seen: Held = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._look, name="rehearsal-lock-watch", daemon=True)

    def __enter__(self) -> _Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        self.conn.close()

    def _look(self) -> None:
        try:
            while not self.stopped.is_set():
                for oid, modes in _held_by(self.conn, self.pid).items():
                    self.seen[oid] = self.seen.get(oid, frozenset()) | modes
                self.stopped.wait(WATCH_SECONDS)
        except psycopg.Error:
            return  # the watch stops; what it saw stays, the rest shows as "not seen"
