"""Running a plan from Slack: ``/migrate run|rehearse|abort|rollback|restore`` and the run's buttons.

Each request is decided on the ``decisions`` pool (who may run, what is left, whether it may run now)
and, when it may, queued as a persistent job that the leader carries out (``bot.execution.jobs``): a
step never runs on a request's thread, and a run survives the process that was asked for it.
"""

from __future__ import annotations

import time
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.errors import UserError
from bot.execution import jobs
from bot.execution.runner import Order
from bot.execution.schedule import parse_when
from bot.markup import quote, quote_message
from handlers.blocks import rollback_modal
from handlers.errors import replies_errors
from handlers.ids import Modal, ModalInput, PlanAction
from handlers.reviews import modal_input, open_modal, queue_click, tell_privately
from handlers.worker import Worker

RUN_WHAT = {PlanAction.RUN_NEXT: "next", PlanAction.RUN_ALL: "all"}


def _queued(worker: Worker, order: Order) -> str:
    jobs.submit(order)
    steps = ", ".join(step.label for step in order.steps)
    return f"▶️ Plan #{order.plan_id}: {quote(steps)} queued; progress follows in the plan's thread."


def _rehearsal_queued(worker: Worker, plan_id: str, user: str, rows: int | None) -> str:
    rehearsal_id = worker.services.rehearsals.order(plan_id, user=user, rows=rows)
    jobs.submit_rehearsal(rehearsal_id)
    return f"🧪 Rehearsal #{rehearsal_id} of plan #{plan_id} queued; progress follows in the plan's thread."


def _rows(text: str) -> int:
    if not text.isdigit():
        raise UserError(f"rows: a whole number of synthetic rows per table, not `{quote(text[:50])}`")
    return int(text)


@replies_errors
def run_command_job(
    worker: Worker, *, verb: str, args: list[str], command: dict[str, Any], respond: Respond
) -> None:
    services, user = worker.services, command["user_id"]
    runner, plan_id = services.runner, args[0]
    if verb == "run":
        what, reason = (args[1] if len(args) > 1 else "next"), " ".join(args[2:]) or None
        text = _queued(worker, runner.order_run(plan_id, user=user, what=what, override_reason=reason))
    elif verb in {"freeze", "unfreeze"}:
        env = args[0]
        change = (
            services.freezes.freeze(env, user=user, reason=" ".join(args[1:]))
            if verb == "freeze"
            else services.freezes.unfreeze(env, user=user)
        )
        if change.announcement.channel is None:  # no channel of its own: said where it was asked
            with services.db.session() as session:
                services.outbox.channel(session, command["channel_id"], change.announcement.text)
        text = f"Done: {change.announcement.text.splitlines()[0]}"
    elif verb == "schedule":
        if args[1].lower() == "cancel":
            services.schedules.cancel(plan_id, user=user)
            text = f"Plan #{plan_id}'s scheduled run is cancelled."
        else:
            record = services.schedules.schedule(plan_id, user=user, at=parse_when(args[1]))
            text = (
                f"⏰ Plan #{record.plan_id} runs at {record.run_at:%Y-%m-%d %H:%M} UTC; its thread is told."
            )
    elif verb == "rehearse":
        text = _rehearsal_queued(worker, plan_id, user, _rows(args[1]) if len(args) > 1 else None)
    elif verb == "abort":
        plan = runner.abort(plan_id, user=user)
        text = f"🛑 Plan #{plan.id} stops after its current step."
    elif verb == "rollback":
        text = _queued(worker, runner.order_rollback(plan_id, user=user, reason=" ".join(args[1:])))
    else:  # restore: say what it overwrites; the button asks to confirm it
        text = f"{runner.restore_warning(plan_id)} Use the plan's *Restore backup* button to confirm."
    respond(text=text, response_type="ephemeral", replace_original=False)


def run_clicked(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """Run next step, Run all, Rehearse, Abort, Restore backup (confirmed in Slack's dialog first)."""
    queue_click(run_button_job, ack, body, context)


@replies_errors
def run_button_job(worker: Worker, *, body: dict[str, Any], respond: Respond) -> None:
    runner, action = worker.services.runner, body["actions"][0]
    user, plan_id = body["user"]["id"], action["value"]
    if action["action_id"] in RUN_WHAT:
        text = _queued(worker, runner.order_run(plan_id, user=user, what=RUN_WHAT[action["action_id"]]))
    elif action["action_id"] == PlanAction.REHEARSE:
        text = _rehearsal_queued(worker, plan_id, user, None)
    elif action["action_id"] == PlanAction.ABORT:
        plan = runner.abort(plan_id, user=user)
        text = f"🛑 Plan #{plan.id} stops after its current step."
    else:
        text = _queued(worker, runner.order_restore(plan_id, user=user, confirmed=True))
    respond(text=text, response_type="ephemeral", replace_original=False)


def rollback_clicked(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """Roll back asks why, in a modal."""
    queue_click(rollback_modal_job, ack, body, context)


@replies_errors
def rollback_modal_job(worker: Worker, *, body: dict[str, Any], respond: Respond) -> None:
    plan_id = body["actions"][0]["value"]
    worker.services.runner.check_rollback(plan_id, user=body["user"]["id"])
    open_modal(worker.client, body["trigger_id"], rollback_modal(int(plan_id)))


def rollback_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    """A reason is all the modal checks; the rollback itself is decided and queued off the ack."""
    reason = (modal_input(view, ModalInput.REASON).get("value") or "").strip()
    if not reason:
        ack(response_action="errors", errors={ModalInput.REASON: "say why the plan is rolled back"})
        return
    ack()
    context["pools"].decisions.submit(rollback_job, body=body, reason=reason, queued_at=time.time())


def rollback_job(worker: Worker, *, body: dict[str, Any], reason: str, queued_at: float) -> None:
    user, plan_id = body["user"]["id"], body["view"]["private_metadata"]
    tell = tell_privately(worker.services, plan_id, user)
    try:
        tell(_queued(worker, worker.services.runner.order_rollback(plan_id, user=user, reason=reason)))
    except UserError as err:  # refused: the submitter is told privately (a modal has no response_url)
        tell(f":warning: {quote_message(str(err))}")


def register(app: App) -> None:
    for action in (
        PlanAction.RUN_NEXT,
        PlanAction.RUN_ALL,
        PlanAction.REHEARSE,
        PlanAction.ABORT,
        PlanAction.RESTORE,
    ):
        app.action(action)(run_clicked)
    app.action(PlanAction.ROLLBACK)(rollback_clicked)
    app.view(Modal.ROLLBACK)(rollback_submitted)
