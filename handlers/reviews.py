"""The plan message's buttons and their modals: Approve, Request changes, Reject.

Every click is acknowledged at once and then decided by ``bot.approvals`` from the clicker's Slack user
id alone: roles come from the config and user groups, never from the payload. Modal submissions are
decided before they are acknowledged, so a refusal shows in the modal, next to what was typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import UserError
from bot.reviewing import Reviews
from handlers.blockkit import validate_view
from handlers.blocks import approve_as_modal, changes_modal, reject_modal
from handlers.errors import replies_errors
from handlers.ids import Modal, ModalInput, PlanAction


def click_key(body: dict[str, Any]) -> str:
    """The same click delivered twice (a retry) has the same key; a second click has another."""
    action = body["actions"][0]
    message_ts = body.get("container", {}).get("message_ts", "")
    return f"click:{message_ts}:{action['action_ts']}:{body['user']['id']}:{action['action_id']}"


def view_key(body: dict[str, Any]) -> str:
    """A modal is submitted once; a retried submission carries the same view id."""
    return f"view:{body['view']['id']}"


def _input(view: dict[str, Any], block: ModalInput) -> Any:
    return view["state"]["values"][block][block]


def _open(client: WebClient, trigger_id: str, view: dict[str, Any]) -> None:
    validate_view(view)
    client.views_open(trigger_id=trigger_id, view=view)


def register(app: App, reviews: Reviews) -> None:
    approvals = reviews.approvals

    @replies_errors
    def approve_clicked(ack: Ack, body: dict[str, Any], client: WebClient, respond: Any) -> None:
        ack()
        user, plan_id = body["user"]["id"], body["actions"][0]["value"]
        slots = approvals.eligible_slots(plan_id, user)
        if len(slots) > 1:
            _open(client, body["trigger_id"], approve_as_modal(int(plan_id), slots))
            return
        slot = slots[0].name if slots else None  # none: approve() says precisely why not
        reviews.announce(approvals.approve(plan_id, user=user, slot=slot, action_key=click_key(body)))

    def opens_modal(check: Callable[[str, str], None], modal: Callable[[int], dict[str, Any]]) -> Any:
        """A button that opens a modal once the server agrees the clicker may use it."""

        @replies_errors
        def clicked(ack: Ack, body: dict[str, Any], client: WebClient, respond: Any) -> None:
            ack()
            plan_id = body["actions"][0]["value"]
            check(plan_id, body["user"]["id"])
            _open(client, body["trigger_id"], modal(int(plan_id)))

        return clicked

    def submitted(block: ModalInput, decide: Any) -> Any:
        """A modal handler: decide, then close the modal, or keep it open with the refusal shown."""

        def handler(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
            try:
                outcome = decide(body, view)
            except UserError as err:
                ack(response_action="errors", errors={block: str(err)[:300]})
                return
            ack()
            reviews.announce(outcome)

        return handler

    def approve_as(body: dict[str, Any], view: dict[str, Any]) -> Any:
        choice = _input(view, ModalInput.SLOT).get("selected_option") or {}
        return approvals.approve(
            view["private_metadata"],
            user=body["user"]["id"],
            slot=choice.get("value"),
            action_key=view_key(body),
        )

    def reject(body: dict[str, Any], view: dict[str, Any]) -> Any:
        reason = _input(view, ModalInput.REASON).get("value") or ""
        return approvals.reject(
            view["private_metadata"], user=body["user"]["id"], reason=reason, action_key=view_key(body)
        )

    def request_changes(body: dict[str, Any], view: dict[str, Any]) -> Any:
        comment = _input(view, ModalInput.COMMENT).get("value") or ""
        return approvals.request_changes(
            view["private_metadata"], user=body["user"]["id"], comment=comment, action_key=view_key(body)
        )

    app.action(PlanAction.APPROVE)(approve_clicked)
    app.action(PlanAction.REJECT)(opens_modal(approvals.check_reject, reject_modal))
    app.action(PlanAction.REQUEST_CHANGES)(opens_modal(approvals.check_request_changes, changes_modal))
    app.view(Modal.APPROVE_AS)(submitted(ModalInput.SLOT, approve_as))
    app.view(Modal.REJECT)(submitted(ModalInput.REASON, reject))
    app.view(Modal.REQUEST_CHANGES)(submitted(ModalInput.COMMENT, request_changes))
