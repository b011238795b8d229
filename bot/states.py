"""A plan's life: the states of the design and the only transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum

from bot.errors import InvalidState


class PlanState(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    RUNNING = "running"
    MONITORING = "monitoring"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    RESTORED = "restored"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


S = PlanState
TRANSITIONS: dict[PlanState, frozenset[PlanState]] = {
    S.DRAFT: frozenset({S.AWAITING_APPROVAL, S.APPROVED, S.CANCELLED}),
    S.AWAITING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED, S.SUPERSEDED, S.EXPIRED}),
    S.APPROVED: frozenset({S.RUNNING, S.CANCELLED, S.SUPERSEDED, S.EXPIRED}),
    S.RUNNING: frozenset({S.MONITORING, S.COMPLETED, S.FAILED}),
    S.MONITORING: frozenset({S.COMPLETED, S.ROLLING_BACK}),
    S.FAILED: frozenset({S.ROLLING_BACK}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.ROLLBACK_FAILED}),
    S.ROLLBACK_FAILED: frozenset({S.RESTORED}),
}
OPEN_STATES = frozenset({S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED})


def check_transition(current: PlanState, target: PlanState) -> None:
    """Raise InvalidState, in words a user understands, when ``current`` cannot become ``target``."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidState(f"a plan that is {current.label} cannot become {target.label}")
