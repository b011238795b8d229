"""Block, action and modal ids of the bot's messages, in one place (kebab-case values)."""

import re
from enum import StrEnum


class PlanBlock(StrEnum):
    HEADER = "plan-header"
    FACTS = "plan-facts"
    CONTEXT = "plan-context"
    HAZARDS = "plan-hazards"
    REASONS = "plan-reasons"
    LOCKS = "plan-locks"
    ROLLBACK = "plan-rollback"
    APPROVALS = "plan-approvals"
    RUN = "plan-run"
    CHECKLIST = "plan-checklist"
    ACTIONS = "plan-actions"


class PlanAction(StrEnum):
    """Buttons on a plan message; each carries the plan id as its value."""

    APPROVE = "plan-approve"
    REJECT = "plan-reject"
    REQUEST_CHANGES = "plan-request-changes"
    RUN_NEXT = "plan-run-next"
    RUN_ALL = "plan-run-all"
    ABORT = "plan-abort"
    ROLLBACK = "plan-roll-back"
    RESTORE = "plan-restore"
    REHEARSE = "plan-rehearse"


class IncidentAction(StrEnum):
    """Buttons of a page or a question; each carries the incident id (a tick: the plan id and the item)."""

    ACKNOWLEDGE = "incident-acknowledge"
    ROLL_BACK = "incident-roll-back"
    RESOLVE = "incident-resolve"
    CONTINUE = "incident-continue"
    TICK = "checklist-tick"  # one button per item, action ids unique in their block: checklist-tick-3


def tick_action(number: int) -> str:
    """The action id of the button ticking item ``number`` (Slack refuses two equal ids in one block)."""
    return f"{IncidentAction.TICK}-{number}"


TICK_ACTIONS = re.compile(rf"^{re.escape(IncidentAction.TICK)}-\d+$")


class Modal(StrEnum):
    """Modal callback ids; private_metadata carries the plan id."""

    APPROVE_AS = "modal-approve-as"
    REJECT = "modal-reject"
    REQUEST_CHANGES = "modal-request-changes"
    ROLLBACK = "modal-rollback"


class ModalInput(StrEnum):
    """Input block ids (the action id inside is the same string)."""

    SLOT = "input-slot"
    REASON = "input-reason"
    COMMENT = "input-comment"
