"""``/migrate plan``: analyse, persist, then announce; the same steps whichever front end asked."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import timeline
from bot.approvals import approval_status
from bot.config import BotConfig
from bot.notifier import Notifier, PlanView
from bot.plans import create_plan, draft_plan, environment
from bot.report import PlanMeta
from bot.reviewing import message_ref, plan_view
from bot.targets import open_catalog
from storage.db import Database
from storage.models import PlanRecord


def submit_plan(
    *,
    db: Database,
    config: BotConfig,
    notifier: Notifier,
    env_name: str | None,
    file_arg: str,
    author: str,
    channel_id: str | None,
) -> PlanRecord:
    """Plan ``file_arg`` for an environment and post it; bad input raises UserError and stores nothing.

    The plan is committed before it is announced, so a failed post never loses it.
    """
    env = environment(config, env_name)
    with open_catalog(env) as catalog:
        draft = draft_plan(config, env.name, file_arg, catalog=catalog)
    with db.session() as session:
        plan = create_plan(session, draft, author=author, channel_id=channel_id)
        status = approval_status(config, plan)
        older = [(old, approval_status(config, old)) for old in replaced_by(session, plan.id)]
    meta = PlanMeta(plan_id=plan.id, state=plan.state, author=author, status=status)
    ref = notifier.post_plan(PlanView(draft, meta, config.policy), channel=channel_id)
    with db.session() as session:
        stored = session.get(PlanRecord, plan.id)
        assert stored is not None
        if ref is not None:
            stored.channel_id, stored.message_ts = ref.channel, ref.ts
            timeline.record(
                session,
                plan_id=plan.id,
                actor="bot",
                kind="announced",
                message=f"posted in {ref.channel}",
                data={"channel": ref.channel, "ts": ref.ts},
            )
        plan = stored
    if ref is not None:
        notifier.post_plan_details(PlanView(draft, meta, config.policy), ref)
    for old, old_status in older:
        old_ref = message_ref(old)
        if old_ref is not None:
            changed = "the migration changed" if old.sha256 != plan.sha256 else "re-planned"
            notifier.update_plan(plan_view(config, old, old_status), old_ref)
            notifier.post_in_thread(
                old_ref,
                f"Superseded by plan #{plan.id} ({changed}); approvals given here no longer count.",
            )
    return plan


def replaced_by(session: Session, plan_id: int) -> list[PlanRecord]:
    """The plans that ``plan_id`` superseded."""
    return list(session.scalars(select(PlanRecord).where(PlanRecord.superseded_by == plan_id)))
