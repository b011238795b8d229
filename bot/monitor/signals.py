"""The guide's database signals ("Monitoring During Migration"), read on the target in one statement with
the same deadline as a SQL source: a silent target makes every signal unknown by the deadline.

- ``connections``: client sessions on the server but this read's own (what max_connections limits);
- ``long_running_queries``: client sessions not idle whose transaction (or query) is older than
  ``long_query_seconds``; ``oldest_query_seconds``: the oldest such age (0 when none). An idle transaction
  counts: it holds its locks as long as a running query does;
- ``lock_waits``: sessions waiting for a lock (pg_locks not granted), the first named with their blockers;
- ``deadlocks``: pg_stat_database's counter for the target database. It is cumulative: the window diffs
  it against the baseline. A deadlock shows once its session has flushed its statistics (at most a
  second or so after, at once when it disconnects);
- ``lock_timeouts``: always unknown. PostgreSQL (18 included) counts no lock timeouts: pg_stat_database
  has ``deadlocks`` and nothing for ``lock_timeout``; they appear only in the server log.

Sessions of other roles show in pg_stat_activity without their kind, state or start unless the reading
role has pg_read_all_stats (superusers and pg_monitor have it): without it the session signals are unknown
rather than counts that miss them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from bot.monitor.deadline import Bounded, Unreadable, read_target
from bot.monitor.sources import Sample, sample

CONNECTIONS = "connections"
LONG_RUNNING = "long_running_queries"
OLDEST_QUERY = "oldest_query_seconds"
LOCK_WAITS = "lock_waits"
DEADLOCKS = "deadlocks"
LOCK_TIMEOUTS = "lock_timeouts"
SIGNALS = (CONNECTIONS, LONG_RUNNING, OLDEST_QUERY, LOCK_WAITS, DEADLOCKS, LOCK_TIMEOUTS)
CUMULATIVE = (DEADLOCKS,)  # counters since the statistics' reset: compare with the baseline's

HIDDEN_SESSIONS = (
    "this role sees other roles' sessions without their kind, state or start: grant it pg_read_all_stats"
)
NO_LOCK_TIMEOUT_COUNTER = (
    "PostgreSQL counts no lock timeouts (pg_stat_database has deadlocks only); "
    "they show in the server log as 'canceling statement due to lock timeout'"
)

_QUERY = """
WITH sessions AS (
    SELECT pid, datname, state, clock_timestamp() - coalesce(xact_start, query_start) AS age
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
), busy AS (
    SELECT * FROM sessions WHERE state <> 'idle'
), waiting AS (
    SELECT DISTINCT pid FROM pg_locks WHERE NOT granted
)
SELECT
    pg_has_role('pg_read_all_stats', 'USAGE'),
    (SELECT count(*) FROM sessions),
    (SELECT count(*) FROM sessions WHERE datname = current_database()),
    current_setting('max_connections'),
    (SELECT count(*) FROM busy WHERE age > make_interval(secs => %(long)s)),
    (SELECT extract(epoch FROM age) FROM busy ORDER BY age DESC NULLS LAST LIMIT 1),
    (SELECT pid || ' ' || state FROM busy ORDER BY age DESC NULLS LAST LIMIT 1),
    (SELECT count(*) FROM waiting),
    (SELECT string_agg(pid || ' waits for ' || array_to_string(pg_blocking_pids(pid), ','), '; ')
     FROM (SELECT pid FROM waiting ORDER BY pid LIMIT 3) AS first),
    (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()),
    (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())
"""


class DatabaseSignals:
    """Reads the signals on the target ``dsn`` (None: every signal unknown, naming ``dsn_env``)."""

    def __init__(
        self,
        dsn: str | None,
        *,
        dsn_env: str | None = None,
        timeout_seconds: float = 5.0,
        long_query_seconds: float = 60.0,
    ) -> None:
        self._dsn = dsn
        self._dsn_env = dsn_env
        self.timeout_seconds = timeout_seconds
        self.long_query_seconds = long_query_seconds
        self._bounded = Bounded()

    def read(self, now: datetime) -> dict[str, Sample]:
        """Every signal of SIGNALS; never raises, returns by ``timeout_seconds``."""
        found: dict[str, tuple[float | None, str]]
        try:
            dsn = self._dsn
            if not dsn:
                raise Unreadable(f"no target DSN: {self._dsn_env or 'dsn_env'} is not set")
            row = self._bounded.run(
                lambda attempt: read_target(dsn, attempt, self._row), self.timeout_seconds
            )
            found = self._signals(row)
        except Unreadable as err:
            found = dict.fromkeys(SIGNALS, (None, str(err)))
        except Exception as err:  # a signal never takes the window down
            found = dict.fromkeys(SIGNALS, (None, f"the read failed: {type(err).__name__}: {err}"))
        found[LOCK_TIMEOUTS] = (None, NO_LOCK_TIMEOUT_COUNTER)
        return {name: sample(name, *found[name], now) for name in SIGNALS}

    def _row(self, conn: psycopg.Connection) -> tuple[Any, ...]:
        row = conn.execute(_QUERY, {"long": self.long_query_seconds}).fetchone()
        assert row is not None  # a SELECT without FROM answers one row
        return row

    def _signals(self, row: tuple[Any, ...]) -> dict[str, tuple[float | None, str]]:
        sees_all, total, here, max_connections, long_running, oldest, oldest_who, waits, waiting = row[:9]
        deadlocks, reset = row[9:]
        if sees_all:
            limit = self.long_query_seconds
            oldest_words = f"pid {oldest_who}, {float(oldest):.1f} s" if oldest is not None else "none busy"
            sessions: dict[str, tuple[float | None, str]] = {
                CONNECTIONS: (
                    float(total),
                    f"{total} client sessions of max_connections {max_connections} ({here} on this database)",
                ),
                LONG_RUNNING: (
                    float(long_running),
                    f"{long_running} running over {limit:g} s ({oldest_words})",
                ),
                OLDEST_QUERY: (float(oldest or 0), f"oldest: {oldest_words}"),
            }
        else:
            sessions = dict.fromkeys((CONNECTIONS, LONG_RUNNING, OLDEST_QUERY), (None, HIDDEN_SESSIONS))
        since = f"since {reset.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if reset else "since the statistics began"
        return {
            **sessions,
            LOCK_WAITS: (
                float(waits),
                f"{waits} sessions waiting for a lock" + (f": {waiting}" if waiting else ""),
            ),
            DEADLOCKS: (
                (float(deadlocks), f"{deadlocks} deadlocks {since} (cumulative: diff with the baseline)")
                if deadlocks is not None
                else (None, "pg_stat_database has no row for this database")
            ),
        }
