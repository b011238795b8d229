"""A stored plan as front ends show it, and where its message is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import BotConfig
from bot.drafting import MigrationFile, environment
from bot.execution.report import run_lines, ticked
from bot.notifier import MessageRef
from bot.plans import plan_summary
from bot.report import PlanMeta, PlanView
from bot.sql.model import Level
from storage.models import PlanRecord

if TYPE_CHECKING:
    from bot.approvals import ApprovalStatus


def plan_view(config: BotConfig, plan: PlanRecord, status: ApprovalStatus | None) -> PlanView:
    """The plan's message as stored: its summary, never its analysis rebuilt; the policy is today's."""
    summary = plan_summary(plan)
    meta = PlanMeta(
        plan_id=plan.id,
        state=plan.state,
        author=plan.author,
        status=status,
        run=tuple(run_lines(config, plan, summary)),
        ticked=ticked(plan),
    )
    env = environment(config, plan.environment)
    return PlanView(
        environment=plan.environment,
        migration=MigrationFile(
            plan.file_name, Path(plan.file_path), plan.sql, plan.sha256, plan.source_commit
        ),
        rollback_source=plan.rollback["source"],
        rollback_sql=plan.rollback_sql,
        requirement=config.rules.requirement(env.tier, Level(plan.complexity)),
        summary=summary,
        meta=meta,
        rules=config.rules,
    )


def message_ref(plan: PlanRecord) -> MessageRef | None:
    if plan.channel_id and plan.message_ts:
        return MessageRef(plan.channel_id, plan.message_ts)
    return None
