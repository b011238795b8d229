"""Which cells of the approval matrix the roles can staff, each sign-off by a different person."""

from __future__ import annotations

from bot.policy import load_policy
from bot.sql.model import Level
from bot.staffing import Finding, unstaffed_cells

APPROVALS = load_policy().approvals
STAFFED = {
    "technical_lead": {"U0TL"},
    "product_owner": {"U0PO"},
    "cto": {"U0CTO"},
    "qa": {"U0QA1", "U0QA2"},
    "architect": {"U0ARCH"},
    "security": {"U0SEC"},
}
TIERS = ("development", "staging", "production")


def _cells(findings: list[Finding]) -> dict[tuple[str, Level], Finding]:
    return {(f.tier, f.level): f for f in findings}


def test_a_fully_staffed_matrix_has_no_findings() -> None:
    assert unstaffed_cells(APPROVALS, STAFFED, tiers=TIERS) == []


def test_two_slots_of_one_role_need_two_holders() -> None:
    findings = unstaffed_cells(APPROVALS, {**STAFFED, "qa": {"U0QA1"}}, tiers=TIERS)
    assert [str(f) for f in findings] == [
        "policy.approvals.production.medium: can never be approved: QA and Load Testing both need a "
        "different qa holder, and qa has 1 member (U0QA1)"
    ]
    assert findings[0].certain


def test_one_person_holding_two_roles_fills_only_one() -> None:
    members = {**STAFFED, "technical_lead": {"U0BOTH"}, "product_owner": {"U0BOTH"}}
    findings = _cells(unstaffed_cells(APPROVALS, members, tiers=TIERS))
    assert set(findings) == {("production", Level.MEDIUM), ("production", Level.HIGH)}
    assert findings["production", Level.HIGH].reason == (
        "Technical Lead and Product Owner both need a different person, and technical_lead and "
        "product_owner have 1 member between them (U0BOTH)"
    )


def test_holders_are_moved_to_make_room() -> None:
    # U0A first takes Technical Lead; the matching moves them to Product Owner, the only one they can fill
    members = {**STAFFED, "technical_lead": {"U0A", "U0B"}, "product_owner": {"U0A"}}
    assert unstaffed_cells(APPROVALS, members, tiers=TIERS) == []
    members["cto"] = {"U0B"}
    (finding,) = unstaffed_cells(APPROVALS, members, tiers=TIERS)
    assert (finding.tier, finding.level) == ("production", Level.HIGH)
    assert finding.reason.startswith("Technical Lead, Product Owner and CTO each need a different person")
    assert finding.reason.endswith("have 2 members between them (U0A, U0B)")


def test_peer_review_is_anyone_but_the_author() -> None:
    members = {"technical_lead": {"U0TL"}}
    assert unstaffed_cells(APPROVALS, members, tiers=["staging"]) == []


def test_only_tiers_in_use_are_checked() -> None:
    assert unstaffed_cells(APPROVALS, {**STAFFED, "qa": {"U0QA1"}}, tiers=["staging"]) == []


def test_unknown_members_make_a_cell_unchecked_only_when_it_hangs_on_them() -> None:
    members = {**STAFFED, "qa": set()}
    findings = _cells(unstaffed_cells(APPROVALS, members, tiers=TIERS, partial={"qa"}))
    assert set(findings) == {("production", Level.LOW), ("production", Level.MEDIUM)}
    medium = findings["production", Level.MEDIUM]
    assert not medium.certain
    assert str(medium) == (
        "policy.approvals.production.medium: could not be fully checked: QA needs a qa holder, "
        "and qa has no known members; qa may have more members than are known here"
    )
    # two qa users known: the unread group cannot matter
    assert unstaffed_cells(APPROVALS, STAFFED, tiers=TIERS, partial={"qa"}) == []


def test_a_role_absent_from_the_members_is_unknown() -> None:
    members = {k: v for k, v in STAFFED.items() if k != "security"}
    (finding,) = unstaffed_cells(APPROVALS, members, tiers=TIERS)
    assert (finding.tier, finding.level, finding.certain) == ("production", Level.HIGH, False)


def test_unknown_members_elsewhere_do_not_hide_an_impossible_cell() -> None:
    members = {**STAFFED, "technical_lead": {"U0BOTH"}, "product_owner": {"U0BOTH"}, "qa": set()}
    findings = _cells(unstaffed_cells(APPROVALS, members, tiers=TIERS, partial={"qa"}))
    assert findings["production", Level.HIGH].certain
    assert findings["production", Level.MEDIUM].certain  # whoever is in qa, TL and PO stay one person
    assert not findings["production", Level.LOW].certain


def test_without_distinct_approvers_only_a_role_without_members_is_impossible() -> None:
    approvals = load_policy({"approvals": {"distinct_approvers": False}}).approvals
    members = {**STAFFED, "qa": {"U0QA1"}, "technical_lead": {"U0PO"}}
    assert unstaffed_cells(approvals, members, tiers=TIERS) == []
    findings = unstaffed_cells(approvals, {**STAFFED, "qa": set()}, tiers=TIERS)
    assert [str(f) for f in findings] == [
        "policy.approvals.production.low: can never be approved: QA needs a qa holder, and qa has no members",
        "policy.approvals.production.medium: can never be approved: QA needs a qa holder, "
        "and qa has no members",
    ]
