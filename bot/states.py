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
    # a run pauses between steps (``/migrate run next``, an abort, a step interrupted by a restart)
    # still RUNNING; rolling back what was applied, or cancelling when nothing was, ends it
    S.RUNNING: frozenset({S.MONITORING, S.COMPLETED, S.FAILED, S.ROLLING_BACK, S.CANCELLED}),
    S.MONITORING: frozenset({S.COMPLETED, S.ROLLING_BACK}),
    S.COMPLETED: frozenset({S.ROLLING_BACK}),  # the way back stays open after the run
    # a failed step can be tried again; what was applied is rolled back; nothing applied: cancelled
    S.FAILED: frozenset({S.RUNNING, S.ROLLING_BACK, S.CANCELLED}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.ROLLBACK_FAILED}),
    # a failed rollback: try it again, or restore the backup
    S.ROLLBACK_FAILED: frozenset({S.ROLLING_BACK, S.RESTORED}),
}
OPEN_STATES = frozenset({S.DRAFT, S.AWAITING_APPROVAL, S.APPROVED})


def check_transition(current: PlanState, target: PlanState) -> None:
    """Raise InvalidState, in words a user understands, when ``current`` cannot become ``target``."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidState(f"a plan that is {current.label} cannot become {target.label}")
