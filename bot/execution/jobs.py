"""The runner's persistent jobs: module-level, taking ids, run by the leader (``bot.jobs``)."""

from __future__ import annotations

import logging
import uuid

from bot.execution.runner import Order, order_from_args
from bot.idempotency import claim
from bot.jobs import Jobs, services

log = logging.getLogger(__name__)


def execute(
    plan_id: int, steps: list[str], operator: str, reason: str | None, key: str | None = None
) -> None:
    """Carry out an order a command or a click gave (its checks were made when it was asked), once: the
    scheduler removes a job just after starting it, and one stopped in between leaves the job in its store,
    to start again after a restart. ``key`` is claimed first; an order seen already is not run again."""
    bot = services()
    if key is not None:
        with bot.db.session() as session:
            if not claim(session, key, plan_id):
                log.warning("run order %s of plan #%s was carried out already: not again", key, plan_id)
                return
    bot.runner.execute(order_from_args(plan_id, steps, operator, reason))


def submit(order: Order, scheduler: Jobs | None = None) -> None:
    """Queue ``order`` as a persistent job of this process's scheduler (run now, by the leader)."""
    key = f"run-order-{uuid.uuid4().hex}"
    (scheduler or _scheduler()).add(execute, job_id=f"run-plan-{order.plan_id}", args=(*order.to_args(), key))


def rehearse(rehearsal_id: int) -> None:
    """Carry out a queued rehearsal (its checks were made when it was asked)."""
    services().rehearsals.run(rehearsal_id)


def submit_rehearsal(rehearsal_id: int, scheduler: Jobs | None = None) -> None:
    """Queue a rehearsal as a persistent job of this process's scheduler (run now, by the leader)."""
    (scheduler or _scheduler()).add(rehearse, job_id=_rehearsal_job(rehearsal_id), args=(rehearsal_id,))


def requeue_rehearsals(scheduler: Jobs) -> list[int]:
    """Rehearsals still queued whose job is gone (the bot stopped between the two): queued again."""
    lost = [r for r in services().rehearsals.queued() if scheduler.next_run(_rehearsal_job(r)) is None]
    for rehearsal_id in lost:
        submit_rehearsal(rehearsal_id, scheduler)
    return lost


def _rehearsal_job(rehearsal_id: int) -> str:
    return f"rehearsal-{rehearsal_id}"


def _scheduler() -> Jobs:
    scheduler = services().jobs
    if scheduler is None:
        raise RuntimeError("this process has no scheduler to queue a job on")
    return scheduler
