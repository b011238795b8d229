"""The runner's persistent jobs: module-level, taking ids, run by the leader (``bot.jobs``)."""

from __future__ import annotations

from bot.execution.runner import Order, order_from_args
from bot.jobs import Jobs, services


def execute(plan_id: int, steps: list[str], operator: str, reason: str | None) -> None:
    """Carry out an order a command or a click gave (its checks were made when it was asked)."""
    services().runner.execute(order_from_args(plan_id, steps, operator, reason))


def submit(order: Order, scheduler: Jobs | None = None) -> None:
    """Queue ``order`` as a persistent job of this process's scheduler (run now, by the leader)."""
    (scheduler or _scheduler()).add(execute, job_id=f"run-plan-{order.plan_id}", args=order.to_args())


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
