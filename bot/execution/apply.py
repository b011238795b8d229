"""Applying a migration's segments to the target: exactly the approved statements, under lock and
statement timeouts, retried when a lock is not granted in time, and watched while they wait for one.

One dedicated connection runs everything. A transactional segment is one transaction (``lock_timeout``
and ``statement_timeout`` set LOCAL); a segment that cannot run in one (``CREATE INDEX CONCURRENTLY``)
runs alone in autocommit after both are set for the session. Statements are sent as stored, one at a
time, never re-parsed or rewritten.

A segment that times out waiting for a lock (SQLSTATE 55P03) is rolled back and tried again after a
growing pause, as the guide says. Only transactional segments are retried: a non-transactional one may
leave work behind (an INVALID index), and running it again would fail on that instead. While a statement
runs, a second connection asks ``pg_blocking_pids`` every half second who it waits for, so the people
watching know which session to look at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime

import psycopg

from bot.execution.errors import StepFailed
from bot.execution.output import shown
from bot.execution.segments import Segment
from bot.execution.target import connect, connected, dsn_secrets, set_timeouts

LOCK_POLL_SECONDS = 0.5
QUERY_LIMIT = 500  # characters of a blocking session's query shown
LOCK_NOT_AVAILABLE = "55P03"
CLIENT_CHECK, CLIENT_CHECK_SINCE = "1s", 140000  # client_connection_check_interval: PostgreSQL 14+

# The guide's "Lock waits" query for one waiting backend: who blocks it, and the lock each holds on
# what it waits for (a table, a row's transaction …).
BLOCKERS = """
SELECT a.pid, a.usename, a.application_name, a.state, a.query,
       coalesce(a.xact_start, a.query_start, a.backend_start),
       (SELECT string_agg(DISTINCT h.mode, ', ') FROM pg_locks h
        WHERE h.pid = a.pid AND h.granted
          AND (h.locktype, h.database, h.relation, h.page, h.tuple, h.virtualxid, h.transactionid,
               h.classid, h.objid, h.objsubid)
              IS NOT DISTINCT FROM
              (w.locktype, w.database, w.relation, w.page, w.tuple, w.virtualxid, w.transactionid,
               w.classid, w.objid, w.objsubid)),
       w.relation::regclass::text
FROM pg_stat_activity a
LEFT JOIN LATERAL (SELECT * FROM pg_locks WHERE pid = %(pid)s AND NOT granted LIMIT 1) w ON true
WHERE a.pid = ANY(pg_blocking_pids(%(pid)s))
ORDER BY a.pid
"""


@dataclass(frozen=True)
class Blocker:
    """A session our statement waits for."""

    pid: int
    user: str | None
    application_name: str
    state: str | None  # "idle in transaction" is the classic culprit
    query: str  # its current or last query, trimmed and redacted
    since: datetime | None  # when its transaction began (its query, outside one)
    lock_mode: str | None  # the lock(s) it holds on what we wait for; None when it is queued ahead of us
    relation: str | None  # the table we wait for; None when we wait for a row or transaction


@dataclass(frozen=True)
class ApplyFailure:
    segment: int  # position of the segment in the list given
    statement: int | None  # index of the statement that failed; None: cancelled, or after_last_segment failed
    sqlstate: str | None
    message: str  # PostgreSQL's message, redacted
    transactional: bool  # False: the statement ran alone, and what it did before failing may remain
    cancelled: bool = False


@dataclass(frozen=True)
class ApplyResult:
    committed: tuple[int, ...]  # statement indexes committed, in order: exactly what an undo must reverse
    timings: tuple[tuple[int, float], ...]  # (statement index, seconds) of the committed statements
    failure: ApplyFailure | None
    lock_retries_used: int
    duration_seconds: float

    @property
    def ok(self) -> bool:
        return self.failure is None


class _Failed(Exception):
    """A segment failed for good; carries the failure to report."""

    def __init__(self, failure: ApplyFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def apply_segments(
    dsn: str,
    segments: Sequence[Segment],
    *,
    lock_timeout: str,
    statement_timeout: str,
    lock_retries: int = 3,
    retry_backoff_seconds: float = 1.0,
    application_name: str,
    progress: Callable[[str], None] | None = None,
    on_lock_wait: Callable[[list[Blocker]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    after_last_segment: Callable[[psycopg.Connection], None] | None = None,
) -> ApplyResult:
    """Apply ``segments`` in order, stopping at the first that fails for good.

    ``on_lock_wait`` hears who blocks a statement, whenever the set of blockers changes while it waits.
    ``cancelled`` is asked before each segment (and each retry). ``after_last_segment(conn)`` runs in
    the last segment's transaction, before its COMMIT, so what it writes (``ledger.record_applied``)
    commits with the migration or not at all; after a non-transactional last segment it can only run
    in a transaction of its own (its failure then leaves that segment committed).

    Errors of the statements come back in ``failure``, with ``committed`` saying exactly what stays;
    only a refused connection raises (StepFailed). If the connection breaks during a COMMIT, that
    segment is reported failed though the server may have committed it.
    """
    started = time.monotonic()
    committed: list[int] = []
    timings: list[tuple[int, float]] = []
    retries = 0

    def say(message: str) -> None:
        if progress:
            progress(message)

    def result(failure: ApplyFailure | None = None) -> ApplyResult:
        if failure:
            say(f"{'stopped' if failure.cancelled else 'failed'}: {failure.message}")
        return ApplyResult(tuple(committed), tuple(timings), failure, retries, time.monotonic() - started)

    with (
        connected(dsn, application_name=application_name) as conn,
        _Runner(dsn, conn, application_name, (lock_timeout, statement_timeout), on_lock_wait, say) as runner,
    ):
        if conn.info.server_version >= CLIENT_CHECK_SINCE:
            # a bot killed mid-statement: PostgreSQL ends the statement (and frees its locks) within a
            # second instead of when the statement ends, which may be statement_timeout later
            conn.execute(f"SET client_connection_check_interval = '{CLIENT_CHECK}'")
        for number, segment in enumerate(segments):
            last = number == len(segments) - 1
            where = f"segment {number + 1}/{len(segments)}"
            attempt = 0
            while True:
                if cancelled and cancelled():
                    message = f"cancelled before {where}"
                    return result(ApplyFailure(number, None, None, message, segment.transactional, True))
                try:
                    done = runner.segment(number, segment, after_last_segment if last else None)
                    break
                except _Failed as err:
                    lock_wait = (
                        err.failure.sqlstate == LOCK_NOT_AVAILABLE and err.failure.statement is not None
                    )
                    if not (lock_wait and segment.transactional and attempt < lock_retries):
                        return result(err.failure)
                pause = retry_backoff_seconds * 2**attempt
                attempt += 1
                retries += 1
                say(
                    f"{where}: lock not granted within {lock_timeout}, rolled back; "
                    f"retry {attempt}/{lock_retries} in {pause:g} s"
                )
                time.sleep(pause)
            committed.extend(s.index for s in segment.statements)
            timings.extend(done)
            kind = "one transaction" if segment.transactional else "outside a transaction"
            seconds = sum(t for _, t in done)
            say(f"{where} committed ({len(segment.statements)} statement(s), {kind}) in {seconds:.2f} s")
            if last and after_last_segment and not segment.transactional:
                try:
                    runner.alone(number, after_last_segment)
                except _Failed as err:
                    return result(err.failure)
    return result()


class _Runner:
    """Runs statements on the migration's connection, watching for lock waits from a second one."""

    def __init__(
        self,
        dsn: str,
        conn: psycopg.Connection,
        application_name: str,
        timeouts: tuple[str, str],
        on_lock_wait: Callable[[list[Blocker]], None] | None,
        say: Callable[[str], None],
    ) -> None:
        self.dsn, self.conn, self.timeouts, self.say = dsn, conn, timeouts, say  # lock, statement timeouts
        self.on_lock_wait = on_lock_wait
        self.watch_name = f"{application_name} lock watch"
        self.secrets = dsn_secrets(dsn)
        self.pid = conn.info.backend_pid
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apply")
        self.monitor: psycopg.Connection | None = None  # opened when a statement first runs long

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown()
        if self.monitor is not None:
            self.monitor.close()

    def segment(
        self, number: int, segment: Segment, hook: Callable[[psycopg.Connection], None] | None
    ) -> list[tuple[int, float]]:
        """Run one segment (``hook`` before the COMMIT of a transactional one); its statements' timings.

        Raises _Failed, the segment's transaction rolled back.
        """
        timings: list[tuple[int, float]] = []
        current: int | None = None
        try:
            if not segment.transactional:
                set_timeouts(self.conn, self.timeouts, local=False)
                current = segment.statements[0].index
                return [(current, self._timed(segment.statements[0].sql))]
            with self.conn.transaction():
                set_timeouts(self.conn, self.timeouts, local=True)
                for stmt in segment.statements:
                    current = stmt.index
                    timings.append((current, self._timed(stmt.sql)))
                current = None
                if hook:
                    hook(self.conn)
        except psycopg.Error as err:
            raise _Failed(self._failure(number, current, err, segment.transactional)) from None
        return timings

    def alone(self, number: int, hook: Callable[[psycopg.Connection], None]) -> None:
        """Run ``hook`` in a transaction of its own; raises _Failed."""
        try:
            with self.conn.transaction():
                hook(self.conn)
        except psycopg.Error as err:
            raise _Failed(self._failure(number, None, err, False)) from None

    def _failure(
        self, number: int, statement: int | None, err: psycopg.Error, transactional: bool
    ) -> ApplyFailure:
        message = shown(str(err), self.secrets)
        if statement is None:
            message = f"after the last segment: {message}"
        return ApplyFailure(number, statement, err.sqlstate, message, transactional)

    def _timed(self, statement: str) -> float:
        """Run one statement as written, reporting lock waits while it runs; its duration in seconds."""
        started = time.monotonic()
        if self.on_lock_wait is None:
            self.conn.execute(statement)
            return time.monotonic() - started
        running = self.pool.submit(self.conn.execute, statement)
        reported: frozenset[int] = frozenset()
        try:
            while True:
                try:
                    running.result(timeout=LOCK_POLL_SECONDS)
                    return time.monotonic() - started
                except FutureTimeout:
                    blockers = self._blockers()
                    pids = frozenset(b.pid for b in blockers)
                    if blockers and pids != reported and self.on_lock_wait is not None:
                        self.on_lock_wait(blockers)
                    reported = pids
        except BaseException:
            if not running.done():  # the callback failed or we were interrupted: stop the statement too
                self.conn.cancel_safe()
                running.exception()
            raise

    def _blockers(self) -> list[Blocker]:
        """Who our statement waits for; a watch that cannot read it stops, and the migration goes on."""
        try:
            if self.monitor is None:
                self.monitor = connect(self.dsn, application_name=self.watch_name)
            rows = self.monitor.execute(BLOCKERS, {"pid": self.pid}).fetchall()
        except (psycopg.Error, StepFailed) as err:
            self.say(f"lock watch stopped: {shown(str(err), self.secrets)}")
            self.on_lock_wait = None
            return []
        return [
            Blocker(
                pid, user, app or "", state, shown(query or "", self.secrets, QUERY_LIMIT), since, mode, rel
            )
            for pid, user, app, state, query, since, mode, rel in rows
        ]
