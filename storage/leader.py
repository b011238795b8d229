"""One leader among the bot's processes: it alone delivers the outbox and runs scheduled jobs.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own, so a replica
that dies releases it with its connection; on SQLite, an exclusive ``flock`` on a file beside the
database does the same for processes sharing that file. An in-memory database has one process.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

# An arbitrary, fixed 64-bit key: "migrate-bot leader".
ADVISORY_KEY = 0x6D62_6F74_6C65_6164


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._fd: int | None = None
        self._memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")

    @property
    def held(self) -> bool:
        return self._memory or self._fd is not None or self._conn is not None

    def acquire(self) -> bool:
        """Become the leader if nobody is; True when this process leads (now or already)."""
        if self.held:
            return self.still_held()
        if self._engine.dialect.name == "sqlite":
            return self._lock_file()
        return self._lock_advisory()

    def still_held(self) -> bool:
        """False once the advisory lock's connection is gone (the lock went with it)."""
        if self._conn is None:
            return self.held
        try:
            self._conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("lost the leader lock's connection; another process may lead now")
            self._conn = None
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                self._conn.close()
            except Exception:
                log.debug("leader connection already gone")
            self._conn = None

    def _lock_file(self) -> bool:
        path = Path(f"{self._engine.url.database}.leader")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _lock_advisory(self) -> bool:
        conn = self._engine.connect()
        conn.execution_options(isolation_level="AUTOCOMMIT")
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar()
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True
