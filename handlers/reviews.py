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
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.app import Services
from bot.approvals import Approvals, Outcome
from bot.errors import UserError
from bot.markup import quote_message
from bot.plans import get_plan
from bot.roles import RoleLookupDeferred
from handlers.blockkit import validate_view
from handlers.blocks import approve_as_modal, changes_modal, reject_modal
from handlers.errors import replies_errors
from handlers.followup import Tell, by_response, follow_up, submit
from handlers.ids import Modal, ModalInput, PlanAction

log = logging.getLogger(__name__)

# Slack shows this much of an error under a modal's input.
MODAL_ERROR_LENGTH = 300

Decide = Callable[[Approvals], Outcome]


def click_key(body: dict[str, Any]) -> str:
    """The same click delivered twice (a retry) has the same key; a second click has another."""
    action = body["actions"][0]
    message_ts = body.get("container", {}).get("message_ts", "")
    return f"click:{message_ts}:{action['action_ts']}:{body['user']['id']}:{action['action_id']}"


def view_key(body: dict[str, Any]) -> str:
    """A modal is submitted once; a retried submission carries the same view id."""
    return f"view:{body['view']['id']}"


def _open(client: WebClient, trigger_id: str, view: dict[str, Any]) -> None:
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


def _queue(
    job: Callable[..., None],
    ack: Ack,
    body: dict[str, Any],
    context: BoltContext,
    respond: Respond,
    client: WebClient,
) -> None:
    ack()
    services: Services = context["services"]
    submit(
        services.decisions,
        by_response(respond),
        job,
        services=services,
        body=body,
        client=client,
        respond=respond,
    )


def approve_clicked(
    ack: Ack, body: dict[str, Any], context: BoltContext, respond: Respond, client: WebClient
) -> None:
    _queue(approve_job, ack, body, context, respond, client)


@replies_errors
def approve_job(*, services: Services, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    user, plan_id = body["user"]["id"], body["actions"][0]["value"]
    slots = services.approvals.eligible_slots(plan_id, user)
    if len(slots) > 1:
        _open(client, body["trigger_id"], approve_as_modal(int(plan_id), slots))
        return
    slot = slots[0].name if slots else None  # none: approve() says precisely why not
    outcome = services.approvals.approve(plan_id, user=user, slot=slot, action_key=click_key(body))
    _follow_up(services, outcome, by_response(respond))


MODALS: dict[
    str, tuple[Callable[[Approvals], Callable[[str, str], None]], Callable[[int], dict[str, Any]]]
] = {
    PlanAction.REJECT: (lambda a: a.check_reject, reject_modal),
    PlanAction.REQUEST_CHANGES: (lambda a: a.check_request_changes, changes_modal),
}


def modal_button_clicked(
    ack: Ack, body: dict[str, Any], context: BoltContext, respond: Respond, client: WebClient
) -> None:
    """Reject and Request changes: the modal opens once the server agrees the clicker may use it."""
    _queue(modal_job, ack, body, context, respond, client)


@replies_errors
def modal_job(*, services: Services, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    action = body["actions"][0]
    check, modal = MODALS[action["action_id"]]
    check(services.approvals)(action["value"], body["user"]["id"])
    _open(client, body["trigger_id"], modal(int(action["value"])))


# --- modals ----------------------------------------------------------------------------------------


def _input(view: dict[str, Any], block: ModalInput) -> Any:
    return view["state"]["values"][block][block]


def _decide_in_ack(
    ack: Ack, services: Services, body: dict[str, Any], block: ModalInput, decide: Decide
) -> None:
    """Decide with cached roles under the deadline: a refusal stays in the modal; otherwise the modal
    closes and the rest (a Slack lookup, a slow store) finishes on the pool, answered privately."""
    fast = services.approvals.using(services.roles.cached_only())
    future = services.decisions.submit(decide, fast)
    try:
        outcome = future.result(timeout=services.config.serve.modal_deadline_seconds)
    except RoleLookupDeferred:
        ack()
        services.decisions.submit(_decide_later, services, body, decide)
        return
    except UserError as err:
        ack(response_action="errors", errors={block: str(err)[:MODAL_ERROR_LENGTH]})
        return
    except concurrent.futures.TimeoutError:
        ack()
        future.add_done_callback(lambda done: _report_late(services, body, done))
        return
    except Exception:
        log.exception("modal %s failed", body["view"].get("callback_id"))
        ack(response_action="errors", errors={block: "Something went wrong on the bot's side; try again."})
        return
    ack()
    _follow_up(services, outcome, _privately(services, body))


def _decide_later(services: Services, body: dict[str, Any], decide: Decide) -> None:
    tell = _privately(services, body)
    try:
        _follow_up(services, decide(services.approvals), tell)
    except UserError as err:
        tell(f":warning: {quote_message(str(err))}")


def _report_late(
    services: Services, body: dict[str, Any], future: concurrent.futures.Future[Outcome]
) -> None:
    error = future.exception()
    if isinstance(error, UserError):
        _privately(services, body)(f":warning: {quote_message(str(error))}")
    elif error is not None:
        log.error("late modal decision failed", exc_info=error)
    else:
        _follow_up(services, future.result(), _privately(services, body))


def _privately(services: Services, body: dict[str, Any]) -> Tell:
    """A modal has no response_url: tell its submitter privately in the plan's channel, via the outbox."""

    def tell(text: str) -> None:
        with services.db.session() as session:
            plan = get_plan(session, body["view"]["private_metadata"])
            if plan.channel_id:
                services.outbox.ephemeral(
                    session, channel=plan.channel_id, user=body["user"]["id"], text=text, plan_id=plan.id
                )

    return tell


def approve_as_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    choice = _input(view, ModalInput.SLOT).get("selected_option") or {}

    def decide(approvals: Approvals) -> Outcome:
        return approvals.approve(
            view["private_metadata"],
            user=body["user"]["id"],
            slot=choice.get("value"),
            action_key=view_key(body),
        )

    _decide_in_ack(ack, context["services"], body, ModalInput.SLOT, decide)


def reject_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    reason = _input(view, ModalInput.REASON).get("value") or ""

    def decide(approvals: Approvals) -> Outcome:
        return approvals.reject(
            view["private_metadata"], user=body["user"]["id"], reason=reason, action_key=view_key(body)
        )

    _decide_in_ack(ack, context["services"], body, ModalInput.REASON, decide)


def request_changes_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    comment = _input(view, ModalInput.COMMENT).get("value") or ""

    def decide(approvals: Approvals) -> Outcome:
        return approvals.request_changes(
            view["private_metadata"], user=body["user"]["id"], comment=comment, action_key=view_key(body)
        )

    _decide_in_ack(ack, context["services"], body, ModalInput.COMMENT, decide)


def register(app: App) -> None:
    app.action(PlanAction.APPROVE)(approve_clicked)
    app.action(PlanAction.REJECT)(modal_button_clicked)
    app.action(PlanAction.REQUEST_CHANGES)(modal_button_clicked)
    app.view(Modal.APPROVE_AS)(approve_as_submitted)
    app.view(Modal.REJECT)(reject_submitted)
    app.view(Modal.REQUEST_CHANGES)(request_changes_submitted)
