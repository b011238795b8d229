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
    """The approval service with its announcements."""

    def __init__(self, approvals: Approvals, notifier: Notifier, config: BotConfig) -> None:
        self.approvals = approvals
        self.notifier = notifier
        self.config = config

    def _announce(self, outcome: Outcome, news: str) -> None:
        ref = message_ref(outcome.plan)
        if ref is None:
            return
        self.notifier.update_plan(plan_view(self.config, outcome.plan, outcome.status), ref)
        self.notifier.post_in_thread(ref, news)

    def refresh(self, plan_id: int | str) -> None:
        """Redraw a plan's message from storage (after an expiry, say)."""
        plan, status = self.approvals.status(plan_id)
        ref = message_ref(plan)
        if ref is not None:
            self.notifier.update_plan(plan_view(self.config, plan, status), ref)

    def approve(
        self,
        plan_id: int | str,
        *,
        user: str,
        slot: str | None = None,
        action_key: str | None = None,
        break_glass_reason: str | None = None,
    ) -> Outcome:
        outcome = self.approvals.approve(
            plan_id, user=user, slot=slot, action_key=action_key, break_glass_reason=break_glass_reason
        )
        if outcome.duplicate:
            return outcome
        plan, status, slot = outcome.plan, outcome.status, outcome.slot
        assert status is not None and slot is not None
        how = f" (break-glass: {break_glass_reason})" if break_glass_reason else ""
        news = (
            f"✅ {self.notifier.mention(user)} approved as {slot.label}{how} "
            f"({len(status.given)} of {len(status.slots)}) for SHA-256 `{plan.sha256[:12]}`"
        )
        if outcome.approved:
            news += (
                f"\n:white_check_mark: Plan #{plan.id} is *approved*: every sign-off is in. "
                f"{self.notifier.mention(plan.author)}, it is ready to run."
            )
        self._announce(outcome, news)
        return outcome

    def reject(self, plan_id: int | str, *, user: str, reason: str, action_key: str | None = None) -> Outcome:
        outcome = self.approvals.reject(plan_id, user=user, reason=reason, action_key=action_key)
        if not outcome.duplicate:
            self._announce(
                outcome,
                f"⛔ {self.notifier.mention(user)} rejected plan #{outcome.plan.id}: {reason.strip()}\n"
                f"{self.notifier.mention(outcome.plan.author)}, plan a changed migration to try again.",
            )
        return outcome

    def request_changes(
        self, plan_id: int | str, *, user: str, comment: str, action_key: str | None = None
    ) -> Outcome:
        outcome = self.approvals.request_changes(plan_id, user=user, comment=comment, action_key=action_key)
        if not outcome.duplicate:
            self._announce(
                outcome,
                f"✏️ {self.notifier.mention(user)} requests changes: {comment.strip()}\n"
                f"{self.notifier.mention(outcome.plan.author)}, plan the changed file to replace this plan.",
            )
        return outcome

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
