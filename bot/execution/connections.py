"""Waiting for the application's connections to drain after maintenance mode is switched on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.execution.errors import StepCancelled, StepTimeout
from bot.execution.output import shown
from bot.execution.target import connected

# Client backends of this database other than ours and the bot's; background workers never drain.
OTHERS = """
SELECT usename, application_name, client_addr::text, state, backend_start FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND application_name IS DISTINCT FROM %s
ORDER BY backend_start
"""


@dataclass(frozen=True)
class Session:
    user: str | None
    application_name: str
    client_addr: str | None  # None: a Unix socket
    state: str | None
    since: datetime | None

    def describe(self) -> str:
        where = self.client_addr or "local socket"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        return shown(
            f"{self.user} ({self.application_name or 'no application_name'}) from {where}, "
            f"{self.state or 'unknown state'}{since}"
        )


def wait_for_connections(
    dsn: str,
    *,
    exclude_application: str,
    timeout: float,
    poll: float = 1.0,
    progress: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Wait until no other client is connected to the target's database (sessions whose application_name
    is ``exclude_application`` do not count); returns how many were connected when the wait began.

    ``progress`` hears the count whenever it changes. Raises StepTimeout naming who is still connected,
    or StepCancelled.
    """
    deadline = time.monotonic() + timeout
    with connected(dsn, application_name=exclude_application) as conn:
        first: int | None = None
        last = -1
        while True:
            sessions = [Session(*row) for row in conn.execute(OTHERS, (exclude_application,)).fetchall()]
            first = len(sessions) if first is None else first
            if not sessions:
                return first
            if progress and len(sessions) != last:
                progress(f"waiting for {len(sessions)} connection(s) to the target to close")
            last = len(sessions)
            if time.monotonic() >= deadline:
                raise StepTimeout(
                    f"{len(sessions)} connection(s) still open after {timeout:g} s: "
                    + "; ".join(s.describe() for s in sessions)
                )
            if cancelled and cancelled():
                raise StepCancelled(
                    f"stopped waiting for {len(sessions)} connection(s): the run was cancelled"
                )
            time.sleep(poll)
