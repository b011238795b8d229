"""The runner's persistent jobs: module-level, taking ids, run by the leader (``bot.jobs``)."""

from __future__ import annotations

from typing import Any

from bot.execution.runner import Order, order_from_args
from bot.jobs import services


def execute(plan_id: int, steps: list[str], operator: str, reason: str | None) -> None:
    """Carry out an order a command or a click gave (its checks were made when it was asked)."""
    services().runner.execute(order_from_args(plan_id, steps, operator, reason))


def submit(order: Order) -> None:
    """Queue ``order`` as a persistent job of this process's scheduler (run now, by the leader)."""
    scheduler = services().jobs
    if scheduler is None:
        raise RuntimeError("this process has no scheduler to queue a run on")
    scheduler.add(execute, job_id=f"run-plan-{order.plan_id}", args=order.to_args())


def job_args(order: Order) -> tuple[Any, ...]:
    return order.to_args()
