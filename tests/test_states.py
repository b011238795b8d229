import itertools

import pytest

from bot.errors import InvalidState
from bot.states import TRANSITIONS, PlanState, check_transition


def test_design_path_is_allowed() -> None:
    path = ["draft", "awaiting_approval", "approved", "running", "monitoring", "completed"]
    for a, b in itertools.pairwise(path):
        check_transition(PlanState(a), PlanState(b))
    for a, b in [
        ("running", "failed"),
        ("failed", "rolling_back"),
        ("rolling_back", "rollback_failed"),
        ("rollback_failed", "restored"),
    ]:
        check_transition(PlanState(a), PlanState(b))


@pytest.mark.parametrize(
    ("a", "b"), [("rejected", "approved"), ("completed", "running"), ("draft", "running")]
)
def test_illegal_transition_is_an_error_the_user_sees(a: str, b: str) -> None:
    with pytest.raises(InvalidState, match=f"{PlanState(a).label} cannot become"):
        check_transition(PlanState(a), PlanState(b))


def test_terminal_states_have_no_exit() -> None:
    assert TRANSITIONS[PlanState.COMPLETED] == {PlanState.ROLLING_BACK}  # only the way back
    for terminal in (
        "rejected",
        "cancelled",
        "superseded",
        "expired",
        "rolled_back",
        "restored",
    ):
        assert PlanState(terminal) not in TRANSITIONS
