"""The leader's watch in the foreground, for teams that run plans from the CLI with no ``serve``: windows
sampled, incidents paged, what Slack is owed sent (when a token is set), each window's line printed when
it changes, until the windows it watches are closed."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from bot.app import Services
from bot.monitor.loop import MonitorLoop
from bot.monitor.report import monitor_line
from bot.monitor.window import OPEN
from storage.leader import Leadership
from storage.models import MonitorRecord

POLL_SECONDS = 1.0


def watch(
    services: Services,
    plan_id: int | None,
    *,
    echo: Callable[[str], None],
    deliver: Callable[[], object] | None = None,
    poll: float = POLL_SECONDS,
) -> bool:
    """Lead the watch until the plan's window (or every window) is closed: all clear, rolled back, or
    no longer held by an incident. False, doing nothing, when another process (``serve``) leads."""
    leadership = Leadership(services.db.engine)
    if not leadership.acquire():
        return False
    loop = MonitorLoop(services.monitors, services.incidents)
    loop.lead()
    shown: dict[int, str] = {}
    try:
        while True:
            lines = _open_lines(services, plan_id)
            for monitor_id, line in lines.items():
                if shown.get(monitor_id) != line:
                    echo(line)
                    shown[monitor_id] = line
            if deliver is not None:
                deliver()
            if not lines:
                return True
            time.sleep(poll)
    finally:
        loop.shutdown()
        leadership.release()


def _open_lines(services: Services, plan_id: int | None) -> dict[int, str]:
    """Each open window's line (for one plan, or all), as the plan's thread shows it."""
    query = select(MonitorRecord).where(MonitorRecord.state.in_([s.value for s in OPEN]))
    if plan_id is not None:
        query = query.where(MonitorRecord.plan_id == plan_id)
    now = services.clock()
    with services.db.reading() as session:
        return {r.id: f"plan #{r.plan_id}: {monitor_line(r, now)}" for r in session.scalars(query)}
