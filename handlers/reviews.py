"""The plan message's buttons and their modals: Approve, Request changes, Reject.

Every click is acknowledged at once and then decided on the ``decisions`` pool by ``bot.approvals``
from the clicker's Slack user id alone: roles come from the config and user groups, never from the
payload. A modal submission must answer inside its ack to keep a refusal next to what was typed, so
it is decided there with cached roles and the bot's own store only, under a deadline; when that cannot
be (a group not cached, a busy store), the modal closes and the answer comes as an ephemeral message.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.app import Services
from bot.approvals import Outcome
from bot.errors import UserError
from bot.markup import quote_message
from bot.plans import get_plan
from bot.roles import RoleLookupDeferred
from bot.workers import Job, WorkPool
from handlers.blockkit import validate_view
from handlers.blocks import approve_as_modal, changes_modal, reject_modal
from handlers.errors import replies_errors
from handlers.followup import Tell, by_response, follow_up
from handlers.ids import Modal, ModalInput, PlanAction
from handlers.worker import Worker

log = logging.getLogger(__name__)

# Slack shows this much of an error under a modal's input.
MODAL_ERROR_LENGTH = 300


def click_key(body: dict[str, Any]) -> str:
    """The same click delivered twice (a retry) has the same key; a second click has another."""
    action = body["actions"][0]
    message_ts = body.get("container", {}).get("message_ts", "")
    return f"click:{message_ts}:{action['action_ts']}:{body['user']['id']}:{action['action_id']}"


def view_key(body: dict[str, Any]) -> str:
    """A modal is submitted once; a retried submission carries the same view id."""
    return f"view:{body['view']['id']}"


def open_modal(client: WebClient, trigger_id: str, view: dict[str, Any]) -> None:
    validate_view(view)
    client.views_open(trigger_id=trigger_id, view=view)


def _follow_up(services: Services, outcome: Outcome, tell: Tell) -> None:
    """Tell the decider when Slack has not shown the decision a few seconds later."""
    if outcome.duplicate:
        return
    plan = outcome.plan
    done = {
        "approval": f"✅ You approved plan #{plan.id} as {outcome.slot.label if outcome.slot else ''}",
        "rejection": f"⛔ You rejected plan #{plan.id}",
        "changes_requested": f"✏️ Your request for changes to plan #{plan.id} is recorded",
    }[outcome.kind]
    follow_up(
        services,
        outcome.owed,
        tell,
        plan_id=plan.id,
        done=done,
        pending="the plan message will be updated when Slack accepts it",
    )


# --- buttons ---------------------------------------------------------------------------------------


def queue_click(job: Job, ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """Acknowledge a click and hand it to the decisions pool, with when it was queued."""
    ack()
    context["pools"].decisions.submit(
        job, body=body, response_url=body["response_url"], queued_at=time.time()
    )


def approve_clicked(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    queue_click(approve_job, ack, body, context)


@replies_errors
def approve_job(worker: Worker, *, body: dict[str, Any], respond: Respond) -> None:
    services = worker.services
    user, plan_id = body["user"]["id"], body["actions"][0]["value"]
    slots = services.approvals.eligible_slots(plan_id, user)
    if len(slots) > 1:
        open_modal(worker.client, body["trigger_id"], approve_as_modal(int(plan_id), slots))
        return
    slot = slots[0].name if slots else None  # none: approve() says precisely why not
    outcome = services.approvals.approve(plan_id, user=user, slot=slot, action_key=click_key(body))
    _follow_up(services, outcome, by_response(respond))


MODALS: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    PlanAction.REJECT: ("check_reject", reject_modal),
    PlanAction.REQUEST_CHANGES: ("check_request_changes", changes_modal),
}


def modal_button_clicked(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """Reject and Request changes: the modal opens once the server agrees the clicker may use it."""
    queue_click(modal_job, ack, body, context)


@replies_errors
def modal_job(worker: Worker, *, body: dict[str, Any], respond: Respond) -> None:
    action = body["actions"][0]
    check, modal = MODALS[action["action_id"]]
    getattr(worker.services.approvals, check)(action["value"], body["user"]["id"])
    open_modal(worker.client, body["trigger_id"], modal(int(action["value"])))


# --- modals ----------------------------------------------------------------------------------------


def modal_input(view: dict[str, Any], block: ModalInput) -> Any:
    return view["state"]["values"][block][block]


def decide_job(worker: Worker, *, body: dict[str, Any], value: str, cached: bool) -> None:
    """Decide a modal submission. ``cached``: inside the ack, with cached roles (a group never read
    raises RoleLookupDeferred) and refusals raised for the modal; otherwise refusals are told privately."""
    services = worker.services
    approvals = services.approvals.using(services.roles.cached_only()) if cached else services.approvals
    user, plan_id, key = body["user"]["id"], body["view"]["private_metadata"], view_key(body)
    tell = tell_privately(services, plan_id, user)
    try:
        match body["view"]["callback_id"]:
            case Modal.APPROVE_AS:
                outcome = approvals.approve(plan_id, user=user, slot=value or None, action_key=key)
            case Modal.REJECT:
                outcome = approvals.reject(plan_id, user=user, reason=value, action_key=key)
            case _:
                outcome = approvals.request_changes(plan_id, user=user, comment=value, action_key=key)
    except UserError as err:
        if cached:
            raise
        tell(f":warning: {quote_message(str(err))}")
        return
    _follow_up(services, outcome, tell)


def tell_privately_job(worker: Worker, *, plan_id: str, user: str, text: str) -> None:
    tell_privately(worker.services, plan_id, user)(text)


def tell_privately(services: Services, plan_id: str, user: str) -> Tell:
    """A modal has no response_url: tell its submitter privately in the plan's channel, via the outbox."""

    def tell(text: str) -> None:
        with services.db.session() as session:
            plan = get_plan(session, plan_id)
            if plan.channel_id:
                services.outbox.ephemeral(
                    session, channel=plan.channel_id, user=user, text=text, plan_id=plan.id
                )

    return tell


def _submitted(block: ModalInput, value: Callable[[dict[str, Any]], str]) -> Callable[..., None]:
    """A modal's handler: decide inside the ack under the deadline, so a refusal stays in the modal next
    to what was typed; when that cannot be (a group not cached, busy workers), close the modal and let
    the decision finish on the pool, its refusal told privately."""

    def handler(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        decisions: WorkPool = context["pools"].decisions
        typed = value(modal_input(view, block))
        future = decisions.submit(decide_job, body=body, value=typed, cached=True)
        try:
            future.result(timeout=context["config"].serve.modal_deadline_seconds)
        except RoleLookupDeferred:
            ack()
            decisions.submit(decide_job, body=body, value=typed, cached=False)
        except UserError as err:
            ack(response_action="errors", errors={block: str(err)[:MODAL_ERROR_LENGTH]})
        except concurrent.futures.TimeoutError:
            ack()
            future.add_done_callback(lambda done: _refused_late(decisions, body, typed, done))
        except Exception:
            log.exception("modal %s failed", view.get("callback_id"))
            ack(
                response_action="errors", errors={block: "Something went wrong on the bot's side; try again."}
            )
        else:
            ack()

    return handler


def _refused_late(
    decisions: WorkPool, body: dict[str, Any], typed: str, future: concurrent.futures.Future[None]
) -> None:
    """A decision that outlived the deadline and could not be taken from the cache is taken again off
    the ack; one that was refused is told to its submitter privately."""
    error = future.exception()
    if isinstance(error, RoleLookupDeferred):
        decisions.submit(decide_job, body=body, value=typed, cached=False)
    elif isinstance(error, UserError):
        text = f":warning: {quote_message(str(error))}"
        user, plan_id = body["user"]["id"], body["view"]["private_metadata"]
        decisions.submit(tell_privately_job, plan_id=plan_id, user=user, text=text)


approve_as_submitted = _submitted(
    ModalInput.SLOT, lambda element: (element.get("selected_option") or {}).get("value") or ""
)
reject_submitted = _submitted(ModalInput.REASON, lambda element: element.get("value") or "")
request_changes_submitted = _submitted(ModalInput.COMMENT, lambda element: element.get("value") or "")


def register(app: App) -> None:
    app.action(PlanAction.APPROVE)(approve_clicked)
    app.action(PlanAction.REJECT)(modal_button_clicked)
    app.action(PlanAction.REQUEST_CHANGES)(modal_button_clicked)
    app.view(Modal.APPROVE_AS)(approve_as_submitted)
    app.view(Modal.REJECT)(reject_submitted)
    app.view(Modal.REQUEST_CHANGES)(request_changes_submitted)
