"""Block Kit builders: pure functions from domain views to Slack message payloads.

Lines come from ``bot.report`` so Slack and the CLI say the same things; long lists are cut to fit
Slack's limits here, and the thread carries the full SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.approvals import Slot
from bot.markup import mention, quote
from bot.notifier import Choice, PlanView
from bot.report import LEVEL_ICON, approval_lines, complexity_line, requirement_lines, title
from bot.states import PlanState
from bot.summary import Listing
from handlers.blockkit import truncate
from handlers.ids import IncidentAction, Modal, ModalInput, PlanAction, PlanBlock, tick_action

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
# Each list (hazards, locks…) is one section of at most this many lines; the rest is counted.
MAX_LINES = 12
# ``/migrate list`` shows at most this many plans.
MAX_LIST = 20

Block = dict[str, Any]


def mrkdwn(text: str, limit: int = SECTION_LIMIT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def section(block_id: str, heading: str, lines: list[str], *, escaped: bool = False, more: int = 0) -> Block:
    """One titled list; lines past MAX_LINES or the character limit are summarised, never silently lost.

    ``escaped`` says the lines already carry Slack markup (mentions) and their free text is escaped;
    ``more`` counts lines a stored plan did not keep (``bot.summary``).
    """
    shown = lines[:MAX_LINES]
    text = f"*{heading}*\n" + "\n".join(f"• {line if escaped else quote(line)}" for line in shown)
    hidden = len(lines) - len(shown) + more
    if hidden:
        text += f"\n_…and {hidden} more: see the thread or `migrate-bot plan`_"
    return {"type": "section", "block_id": block_id, "text": mrkdwn(text)}


def listed(block_id: str, heading: str, listing: Listing[str]) -> Block:
    return section(block_id, heading, list(listing.lines), more=listing.more)


def plan_blocks(view: PlanView) -> list[Block]:
    meta, s = view.meta, view.summary
    fields = [
        f"*Complexity*\n{LEVEL_ICON[s.complexity]} {s.complexity.label}",
        f"*Environment*\n{quote(view.environment)}",
        f"*Strongest lock*\n{s.strongest_lock.value}",
        f"*Statements*\n{s.statements}",
    ]
    if meta:
        fields += [f"*State*\n{meta.state_label}", f"*Author*\n<@{meta.author}>"]
    hazards = [h.text + (f"\n    ↳ _{h.alternative}_" if h.alternative else "") for h in s.hazards.lines]
    rollback = list(s.rollback.lines) + ["Rollback " + line for line in s.rollback_hazards.lines]
    blocks: list[Block] = [
        {
            "type": "header",
            "block_id": PlanBlock.HEADER,
            "text": {"type": "plain_text", "text": truncate(title(view), HEADER_LIMIT)},
        },
        {"type": "section", "block_id": PlanBlock.FACTS, "fields": [mrkdwn(f, FIELD_LIMIT) for f in fields]},
        {
            "type": "context",
            "block_id": PlanBlock.CONTEXT,
            "elements": [
                mrkdwn(quote(complexity_line(s.complexity, view.rules))),
                mrkdwn(f"`sha256 {view.migration.sha256[:12]}` · {quote(s.target)}"),
            ],
        },
        {"type": "divider"},
        section(
            PlanBlock.HAZARDS,
            f"Hazards ({s.hazards.total})",
            hazards or ["None found"],
            more=s.hazards.more,
        ),
        listed(PlanBlock.REASONS, f"Why {s.complexity.label}", s.reasons),
        listed(PlanBlock.LOCKS, "Statements and locks", s.operations),
        section(PlanBlock.ROLLBACK, "Rollback", rollback, more=s.rollback.more + s.rollback_hazards.more),
        approvals_section(view),
        *([section(PlanBlock.RUN, "Run", list(meta.run))] if meta and meta.run else []),
        section(
            PlanBlock.CHECKLIST,
            "Checklist",
            checklist_lines(view),
        ),
    ]
    if meta and meta.state == PlanState.AWAITING_APPROVAL:
        blocks.append(plan_buttons(meta.plan_id))
    elif meta and (run := run_buttons(meta.plan_id, PlanState(meta.state))):
        blocks.append(run)
    return blocks


def approvals_section(view: PlanView) -> Block:
    """Who signed as what and when, and what is missing; before storage, what the policy requires."""
    meta = view.meta
    if meta is None or meta.status is None:
        return section(PlanBlock.APPROVALS, "Required approvals", requirement_lines(view.requirement))
    lines = approval_lines(meta.status, mention=mention, quote=quote)
    return section(PlanBlock.APPROVALS, "Approvals", lines, escaped=True)


def button(
    action: str, value: str, text: str, style: str | None = None, confirm: Block | None = None
) -> Block:
    element: Block = {"type": "button", "action_id": action, "value": value, "text": plain(text)}
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def plan_buttons(plan_id: int) -> Block:
    """Approve, Request changes, Reject, Rehearse: who may press them is decided on the server, per
    click."""
    value = str(plan_id)
    return {
        "type": "actions",
        "block_id": PlanBlock.ACTIONS,
        "elements": [
            button(PlanAction.APPROVE, value, "Approve", "primary"),
            button(PlanAction.REQUEST_CHANGES, value, "Request changes"),
            button(PlanAction.REJECT, value, "Reject", "danger"),
            button(PlanAction.REHEARSE, value, "Rehearse"),
        ],
    }


# The run's buttons, by the plan's state: who may press them is decided on the server, per click.
RUN_BUTTONS = {
    PlanState.APPROVED: [PlanAction.RUN_NEXT, PlanAction.RUN_ALL, PlanAction.REHEARSE, PlanAction.ROLLBACK],
    PlanState.RUNNING: [PlanAction.RUN_NEXT, PlanAction.RUN_ALL, PlanAction.ABORT, PlanAction.ROLLBACK],
    PlanState.FAILED: [PlanAction.RUN_NEXT, PlanAction.ROLLBACK],
    PlanState.COMPLETED: [PlanAction.ROLLBACK],
    PlanState.ROLLBACK_FAILED: [PlanAction.RESTORE, PlanAction.ROLLBACK],
}
RUN_LABELS = {
    PlanAction.RUN_NEXT: ("Run next step", "primary"),
    PlanAction.RUN_ALL: ("Run all", None),
    PlanAction.ABORT: ("Abort", None),
    PlanAction.REHEARSE: ("Rehearse", None),
    PlanAction.ROLLBACK: ("Roll back", "danger"),
    PlanAction.RESTORE: ("Restore backup", "danger"),
}
# Slack's confirmation dialog: what the restore overwrites is checked again on the server.
RESTORE_CONFIRM = {
    "title": {"type": "plain_text", "text": "Restore the backup?"},
    "text": {
        "type": "mrkdwn",
        "text": "The backup taken before this run replaces every object it holds on the target: "
        "every change since then is lost.",
    },
    "confirm": {"type": "plain_text", "text": "Restore"},
    "deny": {"type": "plain_text", "text": "Cancel"},
    "style": "danger",
}


def run_buttons(plan_id: int, state: PlanState) -> Block | None:
    actions = RUN_BUTTONS.get(state)
    if not actions:
        return None
    elements = [
        button(
            action,
            str(plan_id),
            *RUN_LABELS[action],
            RESTORE_CONFIRM if action is PlanAction.RESTORE else None,
        )
        for action in actions
    ]
    return {"type": "actions", "block_id": PlanBlock.ACTIONS, "elements": elements}


def rollback_modal(plan_id: int) -> dict[str, Any]:
    intro = {
        "type": "section",
        "text": mrkdwn(f"Rolling back undoes what the run of plan #{plan_id} applied, in one transaction."),
    }
    field = _text_input(ModalInput.REASON, "Why roll back?", "e.g. error rate doubled after apply")
    return _modal(Modal.ROLLBACK, f"Roll back plan #{plan_id}", "Roll back", plan_id, [intro, field])


def plain(text: str, limit: int = 75) -> dict[str, str]:
    return {"type": "plain_text", "text": truncate(text, limit)}


def _modal(callback: Modal, title: str, submit: str, plan_id: int, blocks: list[Block]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback,
        "private_metadata": str(plan_id),
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


def _text_input(block: ModalInput, label: str, placeholder: str) -> Block:
    return {
        "type": "input",
        "block_id": block,
        "label": plain(label, 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": block,
            "multiline": True,
            "min_length": 3,
            "max_length": 2000,
            "placeholder": plain(placeholder, 150),
        },
    }


def reject_modal(plan_id: int) -> dict[str, Any]:
    intro = {"type": "section", "text": mrkdwn(f"Rejecting ends plan #{plan_id}; the author will read why.")}
    field = _text_input(ModalInput.REASON, "Why is it rejected?", "e.g. needs a feature flag first")
    return _modal(Modal.REJECT, f"Reject plan #{plan_id}", "Reject", plan_id, [intro, field])


def changes_modal(plan_id: int) -> dict[str, Any]:
    field = _text_input(ModalInput.COMMENT, "What should change?", "e.g. batch the UPDATE by id ranges")
    return _modal(Modal.REQUEST_CHANGES, f"Changes to #{plan_id}", "Send", plan_id, [field])


def approve_as_modal(plan_id: int, slots: list[Slot]) -> dict[str, Any]:
    """A member holding several of the missing roles picks the one this approval fills."""
    picker = {
        "type": "input",
        "block_id": ModalInput.SLOT,
        "label": plain("Approve as", 2000),
        "element": {
            "type": "radio_buttons",
            "action_id": ModalInput.SLOT,
            "options": [{"text": plain(s.label), "value": s.name} for s in slots],
        },
    }
    return _modal(Modal.APPROVE_AS, f"Approve plan #{plan_id}", "Approve", plan_id, [picker])


def status_text(view: PlanView, problems: list[str]) -> str:
    """``/migrate status``: state, sign-offs, what is missing, and messages Slack has not taken."""
    meta = view.meta
    assert meta is not None and meta.status is not None
    lines = approval_lines(meta.status, mention=mention, quote=quote) + list(meta.run) + problems
    head = f"*{quote(title(view))}* · {meta.state_label} · author {mention(meta.author)}"
    return truncate(head + "\n" + "\n".join(f"• {line}" for line in lines), SECTION_LIMIT)


def list_text(views: list[PlanView]) -> str:
    """``/migrate list``: the open plans of a channel, newest first."""
    if not views:
        return "No open plans in this channel."
    lines = []
    for view in views[:MAX_LIST]:
        meta = view.meta
        assert meta is not None and meta.status is not None
        missing = ", ".join(s.label for s in meta.status.missing) or "nothing"
        lines.append(
            f"• *#{meta.plan_id}* `{quote(view.migration.name)}` → {quote(view.environment)} · "
            f"{view.summary.complexity.label} · {meta.state_label} · missing: {missing}"
        )
    if len(views) > MAX_LIST:
        lines.append(f"_…and {len(views) - MAX_LIST} more_")
    return truncate("*Open plans*\n" + "\n".join(lines), SECTION_LIMIT)


def plan_fallback_text(view: PlanView) -> str:
    """Notification text for clients that do not render blocks."""
    s = view.summary
    return f"{quote(title(view))}: {s.complexity.label} complexity, {s.hazards.total} hazard(s)"


def code_block(heading: str, sql: str) -> str | None:
    """A SQL listing as one mrkdwn message, or None when it is too long for one (then upload a file)."""
    text = f"*{heading}*\n```\n{quote(sql.rstrip())}\n```"
    return text if len(text) <= SECTION_LIMIT else None


def checklist_lines(view: PlanView) -> list[str]:
    """Per section of the checklist, how many items the run's evidence ticked, and those items."""
    ticked = view.meta.ticked if view.meta else {}
    lines = []
    for name, items in view.rules.checklist.items():
        done = [item for item in items if item in ticked]
        lines.append(
            f"{name}: {len(done)} of {len(items)} ticked" if done else f"{name}: {len(items)} item(s)"
        )
        lines += [f"☑ {item} ({ticked[item]})" for item in done]
    return lines


def checklist_text(view: PlanView) -> str:
    lines = []
    for name, items in view.rules.checklist.items():
        lines.append(f"*{quote(name)}*")
        lines += [f"☐ {quote(item)}" for item in items]
    return "\n".join(lines)


HELP_TEXT = """*migrate-bot* walks a PostgreSQL migration through its safety procedure, from plan to rollback.
• `/migrate plan <file> [environment] [--ref <git ref>]`: analyse a migration (statements, locks, hazards, \
complexity, rollback, approvals) and post the plan here, with Approve / Request changes / Reject buttons
• `/migrate status <plan>`: a plan's state, who approved it as what, and what is missing
• `/migrate list`: the open plans of this channel
• `/migrate rehearse <plan> [rows]`: apply, roll back and apply again on a scratch copy of the target
• `/migrate run <plan> [next|all|<step>]`: run an approved plan's procedure (backup, apply, checks…)
• `/migrate schedule <plan> <time|next-window|cancel>`: run its remaining steps at a time
• `/migrate abort <plan>`: stop a run after its current step
• `/migrate incident <plan> <P0-P3> <what>`: open an incident on a plan that ran: its on-call is paged
• `/migrate freeze <environment> <reason>` / `unfreeze <environment>`: stop every run there
• `/migrate rollback <plan> <reason>`: undo what a run applied
• `/migrate restore <plan>`: what restoring the run's backup overwrites, after a failed rollback
• `/migrate repost <plan>`: send again what Slack refused for a plan (after inviting the bot, say)
• `/migrate timeline <plan> [md|json|csv|png]`: its timeline (report and chart, JSON, CSV) in its thread
• `/migrate help`: this message"""


def help_blocks(extra: str | None = None) -> list[Block]:
    text = f"{extra}\n\n{HELP_TEXT}" if extra else HELP_TEXT
    return [{"type": "section", "text": mrkdwn(text)}]


# A page's or a question's buttons: the domain's choices as Slack controls.
CHOICE_BUTTONS: dict[Choice, tuple[IncidentAction, str, str | None]] = {
    Choice.ACKNOWLEDGE: (IncidentAction.ACKNOWLEDGE, "Acknowledge", "primary"),
    Choice.ROLL_BACK: (IncidentAction.ROLL_BACK, "Roll back", "danger"),
    Choice.RESOLVE: (IncidentAction.RESOLVE, "Resolve", None),
    Choice.CONTINUE: (IncidentAction.CONTINUE, "Continue watching", "primary"),
    Choice.TICK: (IncidentAction.TICK, "Done", None),
}
ROLL_BACK_CONFIRM = {
    "title": {"type": "plain_text", "text": "Roll back the migration?"},
    "text": {"type": "mrkdwn", "text": "The plan's rollback runs on the target now."},
    "confirm": {"type": "plain_text", "text": "Roll back"},
    "deny": {"type": "plain_text", "text": "Cancel"},
    "style": "danger",
}


def choice_blocks(text: str, choices: Sequence[tuple[Choice, str]]) -> list[Block]:
    """A message that asks: its text, then one button per choice (the value says about what)."""
    elements = []
    for choice, value in choices:
        kind, label, style = CHOICE_BUTTONS[choice]
        action: str = kind
        if choice is Choice.TICK:  # one per item: its number in the text (value: plan:section:item)
            number = int(value.rsplit(":", 1)[1]) + 1
            action, label = tick_action(number), f"{label} {number}"
        confirm = ROLL_BACK_CONFIRM if choice is Choice.ROLL_BACK else None
        elements.append(button(action, value, label, style, confirm))
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(text)}]
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    return blocks
