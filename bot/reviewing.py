"""Decisions on a plan, announced: apply the approval rules, then redraw the plan and tell its thread.

The decision is committed before anything is posted, so a Slack outage never loses an approval; the
same functions serve Slack's buttons, the CLI's break-glass approval and the expiry sweep.
"""

from __future__ import annotations

import logging

from bot.approvals import Approvals, ApprovalStatus, Outcome
from bot.config import BotConfig
from bot.notifier import MessageRef, Notifier, PlanView
from bot.plans import draft_from_record
from bot.report import PlanMeta
from storage.models import PlanRecord

log = logging.getLogger(__name__)


def plan_view(config: BotConfig, plan: PlanRecord, status: ApprovalStatus | None) -> PlanView:
    """A stored plan as front ends show it."""
    meta = PlanMeta(plan_id=plan.id, state=plan.state, author=plan.author, status=status)
    return PlanView(draft_from_record(config, plan), meta, config.policy)


def message_ref(plan: PlanRecord) -> MessageRef | None:
    if plan.channel_id and plan.message_ts:
        return MessageRef(plan.channel_id, plan.message_ts)
    return None


class Reviews:
    """Announcements of the approval service's decisions, and the expiry sweep."""

    def __init__(self, approvals: Approvals, notifier: Notifier, config: BotConfig) -> None:
        self.approvals = approvals
        self.notifier = notifier
        self.config = config

    def news(self, outcome: Outcome) -> str:
        """What the plan's thread is told about a decision."""
        plan, status, who = outcome.plan, outcome.status, self.notifier.mention(outcome.actor)
        author = self.notifier.mention(plan.author)
        note = self.notifier.quote(outcome.note or "")
        if outcome.kind == "rejection":
            return (
                f"⛔ {who} rejected plan #{plan.id}: {note}\n{author}, plan a changed migration to try again."
            )
        if outcome.kind == "changes_requested":
            return f"✏️ {who} requests changes: {note}\n{author}, plan the changed file to replace this plan."
        assert outcome.slot is not None
        how = f" (break-glass: {note})" if outcome.note else ""
        text = (
            f"✅ {who} approved as {outcome.slot.label}{how} "
            f"({len(status.given)} of {len(status.slots)}) for SHA-256 `{plan.sha256[:12]}`"
        )
        if outcome.approved:
            text += f"\n🎉 Plan #{plan.id} is *approved*, every sign-off is in. {author}"
        return text

    def announce(self, outcome: Outcome) -> None:
        """Redraw the plan's message and tell its thread; a duplicate action announces nothing."""
        ref = message_ref(outcome.plan)
        if outcome.duplicate or ref is None:
            return
        self.notifier.update_plan(plan_view(self.config, outcome.plan, outcome.status), ref)
        self.notifier.post_in_thread(ref, self.news(outcome))

    def refresh(self, plan_id: int | str) -> None:
        """Redraw a plan's message from storage (after an expiry, say)."""
        plan, status = self.approvals.status(plan_id)
        ref = message_ref(plan)
        if ref is not None:
            self.notifier.update_plan(plan_view(self.config, plan, status), ref)

    def sweep_expired(self) -> list[int]:
        """Expire overdue plans and say so in their threads; returns their ids."""
        expired = self.approvals.expire_due()
        for plan in expired:
            ref = message_ref(plan)
            if ref is None:
                continue
            try:
                self.refresh(plan.id)
                self.notifier.post_in_thread(
                    ref,
                    f"⌛ Plan #{plan.id} expired; its approvals no longer count. "
                    f"{self.notifier.mention(plan.author)}, plan it again to continue.",
                )
            except Exception:  # one unreachable thread must not stop the sweep
                log.exception("could not announce the expiry of plan #%s", plan.id)
        return [p.id for p in expired]
