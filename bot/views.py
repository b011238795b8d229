"""A stored plan as front ends show it, and where its message is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import BotConfig
from bot.execution.report import run_lines, ticked
from bot.notifier import MessageRef, PlanView
from bot.plans import draft_from_record
from bot.report import PlanMeta
from storage.models import PlanRecord

if TYPE_CHECKING:
    from bot.approvals import ApprovalStatus


def plan_view(config: BotConfig, plan: PlanRecord, status: ApprovalStatus | None) -> PlanView:
    meta = PlanMeta(
        plan_id=plan.id,
        state=plan.state,
        author=plan.author,
        status=status,
        run=tuple(run_lines(config, plan)),
        ticked=ticked(plan),
    )
    return PlanView(draft_from_record(config, plan), meta, config.policy)


def message_ref(plan: PlanRecord) -> MessageRef | None:
    if plan.channel_id and plan.message_ts:
        return MessageRef(plan.channel_id, plan.message_ts)
    return None
