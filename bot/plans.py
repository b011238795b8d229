"""Stored plans: a draft (``bot.drafting``) stored as a plan awaiting approval, its state changes, and the
checks that bind approvals and runs to the exact bytes planned.

``bot.planning`` decides whether a new plan may replace an open one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import timeline
from bot.drafting import PlanDraft, read_sql, rollback_from_dict, rollback_to_dict, sha256
from bot.drafting import environment as environment  # for the services that look plans up
from bot.errors import InvalidState, NotFound, UserError
from bot.execution.segments import plan_segments
from bot.rules import ApprovalRequirement
from bot.sql.model import Analysis
from bot.states import OPEN_STATES, PlanState, check_transition
from bot.summary import SHOWN, PlanSummary
from storage.models import PlanRecord

# Plan ids are 64-bit integers in the store; a longer number cannot name one.
MAX_PLAN_ID_DIGITS = 18


def _needs_approval(requirement: ApprovalRequirement) -> bool:
    return bool(requirement.approvers or requirement.reviews or requirement.rehearsal_required)


def create_plan(
    session: Session, draft: PlanDraft, *, author: str, channel_id: str | None, now: datetime
) -> PlanRecord:
    """Store ``draft`` as a plan, awaiting approval unless its environment needs none."""
    state = PlanState.AWAITING_APPROVAL if _needs_approval(draft.requirement) else PlanState.APPROVED
    plan = PlanRecord(
        environment=draft.environment,
        file_name=draft.migration.name,
        file_path=str(draft.migration.path),
        sql=draft.migration.sql,
        sha256=draft.migration.sha256,
        source_commit=draft.migration.commit,
        rollback_sql=draft.rollback.sql,
        rollback_sha256=draft.rollback_sha256,
        rollback=rollback_to_dict(draft.rollback),
        analysis=draft.analysis.to_dict(),
        rollback_analysis=draft.rollback_analysis.to_dict() if draft.rollback_analysis else None,
        summary=summarize(draft).to_dict(),
        segments=plan_segments(draft.analysis, draft.rollback, draft.rollback_analysis),
        complexity=draft.analysis.complexity.value,
        state=state.value,
        author=author,
        channel_id=channel_id,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    session.flush()
    timeline.record(
        session,
        plan_id=plan.id,
        actor=author,
        kind="planned",
        message=f"planned {draft.migration.name} for {draft.environment}: {draft.analysis.complexity.label} "
        f"complexity, {len(draft.analysis.hazards)} hazard(s), state {state.label}",
        data={"sha256": plan.sha256, "rollback_sha256": plan.rollback_sha256, "complexity": plan.complexity},
    )
    return plan


def summarize(draft: PlanDraft) -> PlanSummary:
    """What the stored plan's message will show, drawn from the analysis while it is in memory."""
    return PlanSummary.of(draft.analysis, draft.rollback, draft.rollback_analysis, limit=SHOWN)


def supersede(session: Session, older: PlanRecord, newer: PlanRecord) -> None:
    """``newer`` replaces the open plan ``older``, whose approvals stop counting."""
    older.superseded_by = newer.id
    changed = "the migration changed" if older.sha256 != newer.sha256 else "the rollback changed"
    transition(
        session,
        older,
        PlanState.SUPERSEDED,
        actor=newer.author,
        kind="superseded",
        message=f"superseded by plan #{newer.id} ({changed})",
        data={"by": newer.id, "old_sha256": older.sha256, "new_sha256": newer.sha256},
    )


def transition(
    session: Session,
    plan: PlanRecord,
    target: PlanState,
    *,
    actor: str,
    kind: str,
    message: str,
    data: dict[str, Any],
) -> None:
    """Move ``plan`` to ``target`` (refusing what the state machine forbids); record why on its timeline."""
    check_transition(PlanState(plan.state), target)
    plan.state = target.value
    timeline.record(session, plan_id=plan.id, actor=actor, kind=kind, message=message, data=data)


def open_plans_of(session: Session, environment: str, file_name: str) -> list[PlanRecord]:
    """Open plans of one file in one environment (there is at most one, unless planned concurrently)."""
    return list(
        session.scalars(
            select(PlanRecord)
            .where(
                PlanRecord.environment == environment,
                PlanRecord.file_name == file_name,
                PlanRecord.state.in_([s.value for s in OPEN_STATES]),
            )
            .order_by(PlanRecord.id)
        )
    )


def get_plan(session: Session, plan_id: int | str) -> PlanRecord:
    """The plan with id ``plan_id`` (``#12`` and ``12`` both work); NotFound otherwise."""
    text = str(plan_id).strip().lstrip("#")
    if not text.isdigit() or len(text) > MAX_PLAN_ID_DIGITS:
        raise UserError(f"`{plan_id}` is not a plan id; plan ids are numbers like #12")
    plan = session.get(PlanRecord, int(text))
    if plan is None:
        raise NotFound(f"no plan #{text}")
    return plan


def verify_bytes(plan: PlanRecord) -> None:
    """Refuse when the migration (or its rollback file) on disk is no longer the bytes that were planned.

    Approvals and runs are bound to those bytes; a changed file must be planned again.
    """
    current = Path(plan.file_path)
    on_disk = sha256(read_sql(current, f"`{plan.file_name}`")) if current.is_file() else None
    if on_disk is None and plan.source_commit:
        raise InvalidState(
            f"commit `{plan.source_commit[:12]}` of `{plan.file_name}` is no longer in the bot's git cache; "
            f"plan it again (`/migrate plan {plan.file_name} {plan.environment} --ref {plan.source_commit}`)"
        )
    if on_disk != plan.sha256:
        what = "was deleted" if on_disk is None else "changed"
        raise InvalidState(
            f"`{plan.file_name}` {what} since plan #{plan.id} was made; plan it again "
            f"(`/migrate plan {plan.file_name} {plan.environment}`)"
        )
    rollback_path = plan.rollback.get("path")
    if plan.rollback.get("source") == "file" and rollback_path:
        path = Path(rollback_path)
        if not path.is_file() or sha256(read_sql(path, path.name)) != plan.rollback_sha256:
            raise InvalidState(
                f"the rollback script of plan #{plan.id} changed since it was planned; plan it again"
            )


def plan_summary(plan: PlanRecord) -> PlanSummary:
    """What the plan's message shows of its analysis, as stored when it was planned; a plan stored before
    summaries were (migration 0011) has its analysis rebuilt instead."""
    if plan.summary is not None:
        return PlanSummary.from_dict(plan.summary)
    return PlanSummary.of(
        Analysis.from_dict(plan.analysis),
        rollback_from_dict(plan.rollback, plan.rollback_sql),
        Analysis.from_dict(plan.rollback_analysis) if plan.rollback_analysis else None,
        limit=SHOWN,
    )
