"""Sign-offs on a plan: who must approve it, who may, and the rules every click is checked against.

A plan needs one approval per *slot*: each approver role of the policy's matrix (Technical Lead, …) and
each review it requires (peer review, QA …, filled by the role ``approvals.review_roles`` names). The
rules live here, on the server, so that no Slack payload can skip them: the clicker must hold the
slot's role, the author approves nothing, a slot is filled once, only a plan awaiting approval can be
approved, and every approval is bound to the SHA-256 of the migration and rollback it was given for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import news, timeline
from bot.config import BotConfig
from bot.deps import Service
from bot.errors import Forbidden, InvalidState, UserError
from bot.idempotency import claim
from bot.outbox import Outbox
from bot.plans import environment, get_plan, transition, verify_bytes
from bot.roles import RoleDirectory
from bot.rules import PEER_ROLE, ApprovalRequirement, display_name
from bot.sql.model import Level
from bot.states import OPEN_STATES, PlanState
from storage.models import ApprovalRecord, PlanRecord, RehearsalRecord, aware


@dataclass(frozen=True)
class Slot:
    """One sign-off a plan needs: an approver role, or a review recorded by ``role``."""

    name: str
    kind: str  # "approval" or "review"
    role: str

    @property
    def label(self) -> str:
        return display_name(self.name)


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a plan's sign-offs stand: what it needs, what it has, and until when."""

    state: PlanState
    slots: list[Slot]
    given: dict[str, ApprovalRecord]
    rehearsal_required: bool
    expires_at: datetime
    rehearsal: RehearsalRecord | None = None  # the latest passing rehearsal of these exact bytes

    @property
    def missing(self) -> list[Slot]:
        return [s for s in self.slots if s.name not in self.given]

    @property
    def rehearsal_missing(self) -> bool:
        return self.rehearsal_required and self.rehearsal is None

    @property
    def complete(self) -> bool:
        """Every sign-off given, and the passing rehearsal the policy asks for."""
        return not self.missing and not self.rehearsal_missing


@dataclass(frozen=True)
class Outcome:
    """What a decision did; ``duplicate`` means the same action was already handled and nothing changed."""

    kind: str  # "approval", "rejection" or "changes_requested"
    plan: PlanRecord
    status: ApprovalStatus
    actor: str
    note: str | None = None  # the reason, comment or break-glass justification
    slot: Slot | None = None  # the sign-off an approval filled
    approved: bool = False  # this approval was the plan's last missing sign-off
    duplicate: bool = False
    owed: tuple[int, ...] = ()  # outbox rows that announce it


def required_slots(requirement: ApprovalRequirement, review_roles: dict[str, str]) -> list[Slot]:
    return [Slot(r, "approval", r) for r in requirement.approvers] + [
        Slot(r, "review", review_roles[r]) for r in requirement.reviews
    ]


def approval_status(config: BotConfig, plan: PlanRecord) -> ApprovalStatus:
    policy = config.policy.approvals
    requirement = policy.requirement(environment(config, plan.environment).tier, Level(plan.complexity))
    return ApprovalStatus(
        state=PlanState(plan.state),
        slots=required_slots(requirement, policy.review_roles),
        given={a.slot: a for a in plan.approvals},
        rehearsal_required=requirement.rehearsal_required,
        expires_at=aware(plan.created_at) + timedelta(days=policy.expire_after_days),
        rehearsal=passing_rehearsal(plan),
    )


def passing_rehearsal(plan: PlanRecord) -> RehearsalRecord | None:
    """The newest rehearsal that passed for the plan's exact migration and rollback bytes."""
    passed = [
        r
        for r in plan.rehearsals
        if r.state == "passed" and (r.sha256, r.rollback_sha256) == (plan.sha256, plan.rollback_sha256)
    ]
    return passed[-1] if passed else None


def status_dict(plan: PlanRecord, status: ApprovalStatus) -> dict[str, Any]:
    """A plan's sign-offs as data, for scripts (``migrate-bot status --format json``)."""
    return {
        "plan_id": plan.id,
        "state": status.state.value,
        "sha256": plan.sha256,
        "rollback_sha256": plan.rollback_sha256,
        "expires_at": status.expires_at.isoformat(),
        "rehearsal_required": status.rehearsal_required,
        "rehearsal": status.rehearsal.id if status.rehearsal else None,
        "required": [{"slot": s.name, "kind": s.kind, "role": s.role} for s in status.slots],
        "given": [
            {
                "slot": a.slot,
                "role": a.role,
                "user": a.user_id,
                "at": aware(a.at).isoformat(),
                "via": a.via,
                "reason": a.reason,
                "sha256": a.sha256,
            }
            for a in status.given.values()
        ],
        "missing": [s.name for s in status.missing],
    }


def expire_if_due(
    session: Session, config: BotConfig, plan: PlanRecord, now: datetime, outbox: Outbox
) -> bool:
    """Move an open plan past its approval window to ``expired`` and owe its thread the news; True when
    it did. The sweep and a click that finds the plan overdue both come here, so both say the same."""
    if PlanState(plan.state) not in OPEN_STATES or now < approval_status(config, plan).expires_at:
        return False
    transition(
        session,
        plan,
        PlanState.EXPIRED,
        actor="bot",
        kind="expired",
        message=f"expired: approvals last {config.policy.approvals.expire_after_days:g} days; plan it again",
        data={"sha256": plan.sha256, "approvals": len(plan.approvals)},
    )
    outbox.redraw(session, plan)
    outbox.thread(session, plan, news.expired(plan))
    return True


def _expired_error(plan: PlanRecord) -> InvalidState:
    return InvalidState(
        f"plan #{plan.id} expired: approvals are only valid for a limited time; plan it again "
        f"(`/migrate plan {plan.file_name} {plan.environment}`)"
    )


class Approvals(Service):
    """The decisions people take on plans, each checked against the rules and recorded on the timeline."""

    def using(self, roles: RoleDirectory) -> Approvals:
        """The same service deciding with another role directory (the cache-only one, inside an ack)."""
        return Approvals(replace(self.deps, roles=roles))

    def _load(self, plan_id: int | str) -> tuple[PlanRecord, ApprovalStatus, bool]:
        """The plan and its sign-offs, expiring it first when its time is up (committed on its own, so
        the refusal that may follow does not roll the expiry back); True when it expired just now."""
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            expired = expire_if_due(session, self.config, plan, self.clock(), self.outbox)
            return plan, approval_status(self.config, plan), expired

    def status(self, plan_id: int | str) -> tuple[PlanRecord, ApprovalStatus]:
        """The plan and its sign-offs, expiring it first when its time is up."""
        plan, status, _ = self._load(plan_id)
        return plan, status

    def _current(self, plan_id: int | str) -> tuple[PlanRecord, ApprovalStatus]:
        """Like ``status``, for a decision: a plan that expires now is refused, saying why."""
        plan, status, expired = self._load(plan_id)
        if expired:
            raise _expired_error(plan)
        return plan, status

    def eligible_slots(self, plan_id: int | str, user: str) -> list[Slot]:
        """Missing sign-offs ``user`` may give now (empty for the author); the Approve button offers these."""
        plan, status = self.status(plan_id)
        if user == plan.author or status.state is not PlanState.AWAITING_APPROVAL:
            return []
        if self.config.policy.approvals.distinct_approvers and any(
            a.user_id == user for a in status.given.values()
        ):
            return []
        return [s for s in status.missing if self.roles.holds(user, s.role)]

    def _decide(
        self, session: Session, plan_id: int | str, *, kind: str, user: str, verb: str, action_key: str | None
    ) -> PlanRecord | Outcome:
        """Lock the plan for one decision and claim the action; an action already handled comes back as a
        duplicate Outcome, a plan that cannot be decided by ``user`` as an error."""
        plan = get_plan(session, plan_id)
        session.refresh(plan, with_for_update=True)  # one decision at a time per plan (PostgreSQL store)
        if not claim(session, action_key, plan.id):
            return Outcome(kind, plan, approval_status(self.config, plan), user, duplicate=True)
        self._check_decidable(plan, user, verb)
        return plan

    def _check_decidable(self, plan: PlanRecord, user: str, verb: str) -> None:
        state = PlanState(plan.state)
        if state is not PlanState.AWAITING_APPROVAL:
            raise InvalidState(
                f"plan #{plan.id} is {state.label}; only a plan awaiting approval can be {verb}"
            )
        if user == plan.author:
            raise Forbidden(f"you planned #{plan.id}: someone else must review it")

    def approve(
        self,
        plan_id: int | str,
        *,
        user: str,
        slot: str | None = None,
        action_key: str | None = None,
        break_glass_reason: str | None = None,
    ) -> Outcome:
        """Fill one sign-off of ``plan_id`` as ``user``.

        ``slot`` names the role or review (required when the user may fill several). A break-glass
        approval (the CLI's, with a reason) skips the role check only; every other rule still holds.
        """
        _, status = self._current(plan_id)
        # role lookups (Slack calls for user groups) happen outside the write lock; break-glass skips them
        held = {s.role for s in status.slots if not break_glass_reason and self.roles.holds(user, s.role)}
        with self.db.session() as session:
            plan = self._decide(
                session, plan_id, kind="approval", user=user, verb="approved", action_key=action_key
            )
            if isinstance(plan, Outcome):
                return plan
            verify_bytes(plan)
            status = approval_status(self.config, plan)
            chosen = self._choose_slot(plan, status, user, slot, held, break_glass=bool(break_glass_reason))
            approval = ApprovalRecord(
                slot=chosen.name,
                role=chosen.role,
                user_id=user,
                sha256=plan.sha256,
                rollback_sha256=plan.rollback_sha256,
                via="cli" if break_glass_reason else "slack",
                reason=break_glass_reason,
                at=self.clock(),
            )
            plan.approvals.append(approval)
            session.flush()
            how = f" (break-glass: {break_glass_reason})" if break_glass_reason else ""
            timeline.record(
                session,
                plan_id=plan.id,
                actor=user,
                kind="approval",
                message=f"{chosen.label} {'approved' if chosen.kind == 'approval' else 'recorded'}{how}",
                data={
                    "slot": chosen.name,
                    "role": chosen.role,
                    "sha256": plan.sha256,
                    "rollback_sha256": plan.rollback_sha256,
                    "commit": plan.source_commit or None,
                    "via": approval.via,
                },
            )
            status = approval_status(self.config, plan)
            if status.complete:
                transition(
                    session,
                    plan,
                    PlanState.APPROVED,
                    actor="bot",
                    kind="approved",
                    message=f"approved: all {len(status.slots)} sign-offs for SHA-256 {plan.sha256[:12]}",
                    data={
                        "sha256": plan.sha256,
                        "rollback_sha256": plan.rollback_sha256,
                        "commit": plan.source_commit or None,
                    },
                )
                status = approval_status(self.config, plan)
            outcome = Outcome(
                "approval", plan, status, user, note=break_glass_reason, slot=chosen, approved=status.complete
            )
            return self._announce(session, outcome)

    def _announce(self, session: Session, outcome: Outcome) -> Outcome:
        """Owe Slack the redrawn plan and a line in its thread, in the decision's own transaction."""
        owed = self.outbox.redraw(session, outcome.plan)
        owed += self.outbox.thread(session, outcome.plan, news.decision(outcome))
        return replace(outcome, owed=tuple(owed))

    def _choose_slot(
        self,
        plan: PlanRecord,
        status: ApprovalStatus,
        user: str,
        slot: str | None,
        held: set[str],
        *,
        break_glass: bool,
    ) -> Slot:
        if self.config.policy.approvals.distinct_approvers:  # break-glass too: one operator, one slot
            mine = [a for a in status.given.values() if a.user_id == user]
            if mine:
                raise Forbidden(
                    f"you already signed plan #{plan.id} as {display_name(mine[0].slot)}; "
                    "each sign-off needs a different person"
                )
        by_name = {s.name: s for s in status.slots}
        if slot is not None:
            if slot not in by_name:
                needed = ", ".join(s.label for s in status.slots) or "nothing"
                raise UserError(f"plan #{plan.id} needs no {display_name(slot)} sign-off (it needs {needed})")
            chosen = by_name[slot]
            if chosen.name in status.given:
                given = status.given[chosen.name]
                raise InvalidState(f"{chosen.label} already approved plan #{plan.id} (<@{given.user_id}>)")
            if not break_glass and chosen.role not in held:
                raise Forbidden(f"you do not hold the {display_name(chosen.role)} role")
            return chosen
        candidates = [s for s in status.missing if break_glass or s.role in held]
        if not candidates:
            if not status.missing:
                raise InvalidState(f"plan #{plan.id} has every sign-off it needs")
            needed = ", ".join(s.label for s in status.missing)
            raise Forbidden(f"plan #{plan.id} still needs {needed}; you hold none of these roles")
        if len(candidates) > 1:
            raise UserError("you may sign as " + " or ".join(s.label for s in candidates) + "; choose one")
        return candidates[0]

    def _rejecters(self, status: ApprovalStatus) -> list[str]:
        """Roles that may end a plan: its approver roles (its review roles when it has none), never "peer"."""
        approvers = [s.role for s in status.slots if s.kind == "approval"]
        return [r for r in approvers or [s.role for s in status.slots] if r != PEER_ROLE]

    def check_reject(self, plan_id: int | str, user: str) -> None:
        """Raise the reason ``user`` may not reject the plan; Slack asks before opening the modal."""
        plan, status = self._current(plan_id)
        self._check_decidable(plan, user, "rejected")
        roles = self._rejecters(status)
        if not any(self.roles.holds(user, r) for r in roles):
            named = " or ".join(display_name(r) for r in roles) or "an approver"
            raise Forbidden(f"only {named} may reject plan #{plan.id}")

    def check_request_changes(self, plan_id: int | str, user: str) -> None:
        plan, status = self._current(plan_id)
        self._check_decidable(plan, user, "reviewed")
        if not any(self.roles.holds(user, s.role) for s in status.slots):
            raise Forbidden(f"only someone who may sign plan #{plan.id} can request changes")

    def reject(self, plan_id: int | str, *, user: str, reason: str, action_key: str | None = None) -> Outcome:
        """End a plan: only someone who may approve it, with a reason the author will read."""
        reason = reason.strip()
        if not reason:
            raise UserError("say why the plan is rejected")
        self.check_reject(plan_id, user)  # role lookups happen outside the write transaction
        with self.db.session() as session:
            plan = self._decide(
                session, plan_id, kind="rejection", user=user, verb="rejected", action_key=action_key
            )
            if isinstance(plan, Outcome):
                return plan
            transition(
                session,
                plan,
                PlanState.REJECTED,
                actor=user,
                kind="rejected",
                message=f"rejected: {reason}",
                data={"reason": reason, "sha256": plan.sha256},
            )
            return self._announce(
                session, Outcome("rejection", plan, approval_status(self.config, plan), user, note=reason)
            )

    def request_changes(
        self, plan_id: int | str, *, user: str, comment: str, action_key: str | None = None
    ) -> Outcome:
        """Ask the author for changes; the plan stays open until a changed file supersedes it."""
        comment = comment.strip()
        if not comment:
            raise UserError("say which changes you need")
        self.check_request_changes(plan_id, user)
        with self.db.session() as session:
            plan = self._decide(
                session, plan_id, kind="changes_requested", user=user, verb="reviewed", action_key=action_key
            )
            if isinstance(plan, Outcome):
                return plan
            timeline.record(
                session,
                plan_id=plan.id,
                actor=user,
                kind="changes_requested",
                message=f"changes requested: {comment}",
                data={"comment": comment, "sha256": plan.sha256},
            )
            outcome = Outcome(
                "changes_requested", plan, approval_status(self.config, plan), user, note=comment
            )
            return self._announce(session, outcome)

    def expire_due(self) -> list[PlanRecord]:
        """Expire every open plan past its window (the scheduler's sweep); returns those it expired."""
        now = self.clock()
        with self.db.session() as session:
            plans = session.scalars(
                select(PlanRecord).where(PlanRecord.state.in_([s.value for s in OPEN_STATES]))
            ).all()
            return [p for p in plans if expire_if_due(session, self.config, p, now, self.outbox)]

    def open_plans(self, channel_id: str | None = None) -> list[tuple[PlanRecord, ApprovalStatus]]:
        """Plans still open (awaiting approval or approved), newest first; in one channel when given."""
        self.expire_due()
        with self.db.session() as session:
            query = select(PlanRecord).where(PlanRecord.state.in_([s.value for s in OPEN_STATES]))
            if channel_id is not None:
                query = query.where(PlanRecord.channel_id == channel_id)
            plans = session.scalars(query.order_by(PlanRecord.id.desc())).all()
            return [(p, approval_status(self.config, p)) for p in plans]
