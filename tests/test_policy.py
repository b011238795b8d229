import pytest
from pydantic import ValidationError

from bot.policy import load_policy
from bot.sql.model import Level


def test_defaults_carry_the_guides_numbers() -> None:
    p = load_policy()
    assert p.complexity.large_table_rows == 1_000_000
    assert p.monitor.window_minutes == 60
    assert p.monitor.rollback_triggers.error_rate_pct == 5
    assert p.monitor.rollback_triggers.error_rate_window_minutes == 10
    assert p.monitor.rollback_triggers.latency_degradation_pct == 50
    assert p.severities["P0"].rollback == "automatic"
    assert (p.severities["P1"].response_minutes, p.severities["P1"].rollback_after_minutes) == (15, 30)
    assert (p.severities["P2"].response_minutes, p.severities["P2"].rollback_after_minutes) == (60, 120)
    assert p.severities["P3"].rollback == "not_required"
    assert [(lv.role, lv.after_minutes) for lv in p.escalation.chain] == [
        ("on_call", 0),
        ("technical_lead", 15),
        ("cto", 60),
    ]
    assert p.approvals.expire_after_days == 7


@pytest.mark.parametrize(
    ("tier", "level", "approvers", "reviews", "rehearsal"),
    [
        ("development", Level.HIGH, [], [], False),
        ("staging", Level.LOW, ["technical_lead"], ["peer_review"], False),
        ("production", Level.LOW, ["technical_lead"], ["peer_review", "qa"], False),
        (
            "production",
            Level.MEDIUM,
            ["technical_lead", "product_owner"],
            ["peer_review", "qa", "load_testing"],
            False,
        ),
        (
            "production",
            Level.HIGH,
            ["technical_lead", "product_owner", "cto"],
            ["architecture_review", "security_review"],
            True,
        ),
    ],
)
def test_approval_matrix(tier: str, level: Level, approvers: list, reviews: list, rehearsal: bool) -> None:
    req = load_policy().approvals.requirement(tier, level)
    assert (req.approvers, req.reviews, req.rehearsal_required) == (approvers, reviews, rehearsal)


def test_complexity_matrix_rows() -> None:
    rules = load_policy().complexity.rules
    assert rules["add_nullable_column"] is Level.LOW
    assert rules["create_index_large_table"] is Level.MEDIUM
    assert rules["add_foreign_key"] is Level.MEDIUM
    assert rules["rename_column"] is Level.HIGH
    assert rules["drop_table"] is Level.HIGH


def test_escalation_delays_must_not_decrease() -> None:
    chain = [{"role": "on_call", "after_minutes": 30}, {"role": "cto", "after_minutes": 10}]
    with pytest.raises(ValidationError):
        load_policy({"escalation": {"chain": chain}})


def test_new_environment_tier_needs_every_level() -> None:
    with pytest.raises(ValidationError, match="missing complexity levels"):
        load_policy({"approvals": {"qa": {"low": {"approvers": [], "reviews": [], "documentation": []}}}})
