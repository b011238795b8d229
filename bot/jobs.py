"""Persistent jobs: APScheduler 3 with its SQLAlchemy job store on the bot's own database.

Jobs survive a restart; one that came due while no bot ran fires once when one is back (coalesced),
within its grace time. Exactly one process runs them, the leader (``storage.leader``); every other
process only adds jobs, through a scheduler started paused: the job store is shared, the running of
jobs never is. The leader wakes its scheduler often, so a job another process added runs at once.

Job functions are module-level and take ids; they reach the process's services through ``services()``,
which the process installs when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from storage.models import JOBS_TABLE

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# Jobs that may run at once in the leader: steps of different plans, sweeps, deadlines.
JOB_THREADS = 8
# A job that came due while no bot ran still fires when one is back, if it is not later than this.
MISFIRE_GRACE_SECONDS = 300

_services: Services | None = None


def install(services: Services) -> None:
    """Give this process's job functions their services."""
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        raise RuntimeError("no services installed in this process (bot.jobs.install)")
    return _services


class Jobs:
    """This process's scheduler: paused (it only adds jobs) until ``lead()``; stopped by ``follow()``."""

    def __init__(self, services: Services) -> None:
        self._engine = services.db.engine
        self._scheduler = self._new()
        self._scheduler.start(paused=True)

    def _new(self) -> BackgroundScheduler:
        return BackgroundScheduler(
            timezone="UTC",
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine, tablename=JOBS_TABLE.name)},
            executors={"default": ThreadPoolExecutor(JOB_THREADS)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )

    @property
    def leading(self) -> bool:
        return bool(self._scheduler.state == STATE_RUNNING)

    def lead(self) -> None:
        """Run the jobs (this process became the leader); and notice jobs other processes added."""
        if not self.leading:
            log.info("this process runs the scheduled jobs now")
            self._scheduler.resume()
        self._scheduler.wakeup()

    def follow(self) -> None:
        """Stop running jobs (leadership lost); keep adding them."""
        if self.leading:
            self._scheduler.pause()

    def add(
        self,
        func: Callable[..., Any],
        *,
        job_id: str,
        run_at: datetime | None = None,
        every_minutes: float | None = None,
        args: tuple[Any, ...] = (),
    ) -> None:
        """Add (or replace) a job: once at ``run_at`` (default: now), or every ``every_minutes``."""
        if every_minutes is not None:
            self._scheduler.add_job(
                func, "interval", minutes=every_minutes, id=job_id, args=args, replace_existing=True
            )
        else:
            self._scheduler.add_job(
                func, "date", run_date=run_at, id=job_id, args=args, replace_existing=True
            )

    def remove(self, job_id: str) -> bool:
        try:
            self._scheduler.remove_job(job_id)
        except JobLookupError:
            return False
        return True

    def next_run(self, job_id: str) -> datetime | None:
        job = self._scheduler.get_job(job_id)
        return job.next_run_time if job else None

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=False)


def sweep_expired() -> None:
    """Expire overdue plans; their threads are told through the outbox."""
    services().approvals.expire_due()
