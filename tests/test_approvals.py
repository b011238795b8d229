"""The approval rules, enforced by the domain whatever front end asks: roles, authorship, bytes, time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.approvals import Approvals
from bot.config import BotConfig, RoleConfig, parse_config
from bot.deps import Deps
from bot.drafting import draft_plan
from bot.errors import Forbidden, InvalidState, UserError
from bot.outbox import Kind, Outbox
from bot.planning import Planner
from bot.plans import create_plan
from bot.roles import RoleDirectory, RoleLookupError
from bot.sql.catalog import OfflineCatalog
from bot.states import PlanState
from storage.db import Database
from storage.models import ApprovalRecord, EventRecord, OutboxRecord, PlanRecord, RehearsalRecord
from tests.clock import Clock

AUTHOR = "U0AUTHOR"
ROLES = {
    "technical_lead": {"users": ["U0TL", "U0TWOHATS"]},
    "product_owner": {"users": ["U0PO"]},
    "cto": {"users": ["U0CTO", "U0TWOHATS"]},
    "qa": {"groups": ["S0QA"]},
    "architect": {"users": ["U0ARCH"]},
    "security": {"users": ["U0SEC"]},
    "on_call": {"users": ["U0ONCALL"]},
}
HIGH_SQL = "SET lock_timeout = '5s';\nALTER TABLE nchat.messages DROP COLUMN legacy_flag;\n"
LOW_SQL = "CREATE TABLE nchat.bookmarks (id bigint PRIMARY KEY);\n"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    (path / "070_drop_legacy_flag.sql").write_text(HIGH_SQL)
    (path / "071_bookmarks.sql").write_text(LOW_SQL)
    return path


@pytest.fixture
def config(migrations: Path) -> BotConfig:
    data = {
        "environments": {
            "production": {"migrations_dir": str(migrations), "server_version_num": 180000},
            "staging": {"migrations_dir": str(migrations), "server_version_num": 180000},
        },
        "roles": ROLES,
    }
    return parse_config(data, migrations)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    return database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def group_calls() -> list[str]:
    return []


@pytest.fixture
def roles(config: BotConfig, group_calls: list[str]) -> RoleDirectory:
    def members(group: str) -> list[str]:
        group_calls.append(group)
        return {"S0QA": ["U0QA1", "U0QA2"]}[group]

    return RoleDirectory(config.roles, members)


@pytest.fixture
def approvals(db: Database, config: BotConfig, clock: Clock, roles: RoleDirectory) -> Approvals:
    return Approvals(Deps(db, config, roles, Outbox(clock), clock))


@pytest.fixture
def planner(db: Database, config: BotConfig, clock: Clock, roles: RoleDirectory) -> Planner:
    return Planner(Deps(db, config, roles, Outbox(clock), clock))


def plan(db: Database, config: BotConfig, file: str, env: str = "production") -> int:
    draft = draft_plan(config, env, file, catalog=OfflineCatalog(180000))
    with db.session() as session:
        return create_plan(session, draft, author=AUTHOR, channel_id="C0MIGRATIONS", now=db.clock()).id


def rehearsal(db: Database, plan_id: int, *, state: str = "passed", sha256: str | None = None) -> None:
    """A finished rehearsal of the plan, stored as ``bot.execution.rehearsing`` stores one (those run on
    PostgreSQL in tests/execution/test_rehearsing.py)."""
    with db.session() as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        session.add(
            RehearsalRecord(
                plan_id=plan_id,
                sha256=sha256 or plan.sha256,
                rollback_sha256=plan.rollback_sha256,
                state=state,
                operator=AUTHOR,
                report={},
            )
        )


def test_production_high_waits_for_its_rehearsal_after_every_sign_off(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    for user in ("U0TL", "U0PO", "U0ARCH", "U0SEC", "U0CTO"):
        outcome = approvals.approve(plan_id, user=user)
        assert not outcome.approved
    _, status = approvals.status(plan_id)
    assert not status.missing and status.rehearsal_missing and status.state is PlanState.AWAITING_APPROVAL
    last_news = [text for kind, text in owed(db, plan_id) if kind == Kind.THREAD][-1]
    assert "approved once a rehearsal of these exact bytes passes" in last_news


def owed(db: Database, plan_id: int) -> list[tuple[str, str]]:
    """The plan's outbox rows: (kind, text of a thread line)."""
    with db.session() as session:
        rows = session.scalars(
            select(OutboxRecord).where(OutboxRecord.plan_id == plan_id).order_by(OutboxRecord.id)
        )
        return [(r.kind, r.payload.get("text", "")) for r in rows]


def counts(db: Database) -> tuple[int, int, str]:
    with db.session() as session:
        approvals = session.scalar(select(func.count()).select_from(ApprovalRecord))
        events = session.scalar(select(func.count()).select_from(EventRecord))
        states = ",".join(session.scalars(select(PlanRecord.state).order_by(PlanRecord.id)))
    return approvals or 0, events or 0, states


def test_production_high_needs_every_role_and_review_then_is_approved(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    _, status = approvals.status(plan_id)
    assert [s.name for s in status.slots] == [
        "technical_lead",
        "product_owner",
        "cto",
        "architecture_review",
        "security_review",
    ]
    assert status.rehearsal_required
    signers = [("U0TL", None), ("U0PO", None), ("U0ARCH", None), ("U0SEC", None)]
    for user, slot in signers:
        outcome = approvals.approve(plan_id, user=user, slot=slot)
        assert not outcome.approved
        assert outcome.plan.state == PlanState.AWAITING_APPROVAL
    rehearsal(db, plan_id, sha256="0" * 64)  # a rehearsal of other bytes proves nothing about these
    rehearsal(db, plan_id, state="failed")
    assert approvals.status(plan_id)[1].rehearsal_missing
    rehearsal(db, plan_id)
    outcome = approvals.approve(plan_id, user="U0CTO")
    assert outcome.approved and outcome.plan.state == PlanState.APPROVED
    with db.session() as session:
        rows = session.scalars(select(ApprovalRecord).order_by(ApprovalRecord.id)).all()
        stored = session.get(PlanRecord, plan_id)
        assert stored is not None
        assert [(a.slot, a.user_id) for a in rows] == [
            ("technical_lead", "U0TL"),
            ("product_owner", "U0PO"),
            ("architecture_review", "U0ARCH"),
            ("security_review", "U0SEC"),
            ("cto", "U0CTO"),
        ]
        assert {a.sha256 for a in rows} == {stored.sha256}
        assert {a.rollback_sha256 for a in rows} == {stored.rollback_sha256}
        kinds = [e.kind for e in stored.events]
    assert kinds.count("approval") == 5 and kinds[-1] == "approved"


def test_staging_peer_review_is_anyone_but_the_author(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "071_bookmarks.sql", env="staging")
    assert [s.name for s in approvals.status(plan_id)[1].slots] == ["technical_lead", "peer_review"]
    assert [s.name for s in approvals.eligible_slots(plan_id, "U0SOMEONE")] == ["peer_review"]
    assert approvals.eligible_slots(plan_id, AUTHOR) == []
    approvals.approve(plan_id, user="U0SOMEONE")
    assert approvals.approve(plan_id, user="U0TL").approved


@pytest.mark.parametrize(
    ("user", "slot", "error", "words"),
    [
        (AUTHOR, None, Forbidden, "someone else"),  # the author holds no role here, and is refused first
        ("U0NOBODY", None, Forbidden, "you hold none"),
        ("U0PO", "cto", Forbidden, "do not hold the CTO role"),
        ("U0TL", "qa", UserError, "needs no QA sign-off"),
    ],
)
def test_forbidden_clicks_change_nothing(
    approvals: Approvals,
    db: Database,
    config: BotConfig,
    user: str,
    slot: str | None,
    error: type[Exception],
    words: str,
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    before = counts(db)
    with pytest.raises(error, match=words):
        approvals.approve(plan_id, user=user, slot=slot, action_key=f"k-{user}")
    assert counts(db) == before


def test_the_author_cannot_approve_even_holding_the_role(
    db: Database, config: BotConfig, clock: Clock, migrations: Path
) -> None:
    roles = RoleDirectory({**config.roles, "technical_lead": RoleConfig(users=[AUTHOR])})
    approvals = Approvals(Deps(db, config, roles, Outbox(clock), clock))
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    assert approvals.eligible_slots(plan_id, AUTHOR) == []
    with pytest.raises(Forbidden, match="someone else"):
        approvals.approve(plan_id, user=AUTHOR, slot="technical_lead")


def test_a_role_is_approved_once_and_one_person_signs_once(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    approvals.approve(plan_id, user="U0TL")
    before = counts(db)
    with pytest.raises(InvalidState, match="Technical Lead already approved"):
        approvals.approve(plan_id, user="U0TWOHATS", slot="technical_lead")
    with pytest.raises(Forbidden, match="different person"):
        approvals.approve(plan_id, user="U0TL", slot="cto")  # U0TL does not hold CTO; refused earlier anyway
    assert counts(db) == before


def test_a_user_with_several_roles_picks_one(approvals: Approvals, db: Database, config: BotConfig) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    assert [s.name for s in approvals.eligible_slots(plan_id, "U0TWOHATS")] == ["technical_lead", "cto"]
    with pytest.raises(UserError, match="Technical Lead or CTO; choose one"):
        approvals.approve(plan_id, user="U0TWOHATS")
    approvals.approve(plan_id, user="U0TWOHATS", slot="cto")
    assert approvals.eligible_slots(plan_id, "U0TWOHATS") == []  # distinct approvers
    with pytest.raises(Forbidden, match="already signed plan #1 as CTO"):
        approvals.approve(plan_id, user="U0TWOHATS", slot="technical_lead")


def test_user_groups_are_resolved_and_cached(
    approvals: Approvals, db: Database, config: BotConfig, group_calls: list[str]
) -> None:
    plan_id = plan(db, config, "071_bookmarks.sql")  # production Low: Technical Lead, peer review, QA
    assert [s.name for s in approvals.eligible_slots(plan_id, "U0QA2")] == ["peer_review", "qa"]
    approvals.approve(plan_id, user="U0QA2", slot="qa")
    approvals.approve(plan_id, user="U0QA1", slot="peer_review")
    assert group_calls == ["S0QA"]


def test_an_unreadable_group_refuses_instead_of_guessing(
    db: Database, config: BotConfig, clock: Clock
) -> None:
    def broken(group: str) -> list[str]:
        raise ConnectionError("slack down")

    approvals = Approvals(Deps(db, config, RoleDirectory(config.roles, broken), Outbox(clock), clock))
    plan_id = plan(db, config, "071_bookmarks.sql")
    before = counts(db)
    with pytest.raises(RoleLookupError, match="S0QA"):
        approvals.approve(plan_id, user="U0QA1", slot="qa")
    assert counts(db) == before


def test_the_same_action_twice_records_one_approval_and_one_event(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    first = approvals.approve(plan_id, user="U0TL", action_key="C0:1700000000.1:U0TL")
    after_first = counts(db)
    second = approvals.approve(plan_id, user="U0TL", action_key="C0:1700000000.1:U0TL")
    assert not first.duplicate and second.duplicate
    assert counts(db) == after_first
    assert after_first[0] == 1


def test_rejection_needs_an_approver_and_a_reason_and_ends_the_plan(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    with pytest.raises(UserError, match="say why"):
        approvals.reject(plan_id, user="U0TL", reason="  ")
    with pytest.raises(Forbidden, match="only Technical Lead or Product Owner or CTO may reject"):
        approvals.reject(plan_id, user="U0ARCH", reason="no")
    with pytest.raises(Forbidden, match="someone else"):
        approvals.reject(plan_id, user=AUTHOR, reason="changed my mind")
    outcome = approvals.reject(plan_id, user="U0PO", reason="needs a feature flag first")
    assert outcome.plan.state == PlanState.REJECTED
    with pytest.raises(InvalidState, match="is rejected; only a plan awaiting approval can be approved"):
        approvals.approve(plan_id, user="U0TL")
    with db.session() as session:
        stored = session.get(PlanRecord, plan_id)
        assert stored is not None
        assert stored.events[-1].kind == "rejected"
        assert stored.events[-1].message == "rejected: needs a feature flag first"


def test_request_changes_keeps_the_plan_open(approvals: Approvals, db: Database, config: BotConfig) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    outcome = approvals.request_changes(plan_id, user="U0SEC", comment="batch the delete")
    assert outcome.plan.state == PlanState.AWAITING_APPROVAL
    with pytest.raises(Forbidden):
        approvals.request_changes(plan_id, user="U0NOBODY", comment="x")


def test_a_changed_file_cannot_be_approved_and_replanning_supersedes(
    approvals: Approvals, planner: Planner, db: Database, migrations: Path
) -> None:
    old_id = _submitted(planner, AUTHOR)
    approvals.approve(old_id, user="U0TL")
    (migrations / "070_drop_legacy_flag.sql").write_text(HIGH_SQL + "-- reviewed\n")
    before = counts(db)
    with pytest.raises(InvalidState, match="changed since plan #1"):
        approvals.approve(old_id, user="U0PO")
    assert counts(db) == before
    new_id = _submitted(planner, AUTHOR)
    assert approvals.status(old_id)[1].state is PlanState.SUPERSEDED
    assert approvals.status(new_id)[1].given == {}
    assert (
        Kind.THREAD,
        f"Superseded by plan #{new_id} (the migration changed), planned by <@{AUTHOR}>; "
        "approvals given here no longer count.",
    ) in owed(db, old_id)
    with pytest.raises(InvalidState, match="is superseded"):
        approvals.approve(old_id, user="U0PO")


def _submitted(planner: Planner, user: str, key: str | None = None) -> int:
    submission = planner.submit(
        env_name="production",
        file_arg="070_drop_legacy_flag.sql",
        author=user,
        typed_in="C0MIGRATIONS",
        request_key=key,
    )
    assert submission.plan is not None
    return submission.plan.id


def test_replanning_the_same_bytes_creates_nothing(
    planner: Planner, approvals: Approvals, db: Database
) -> None:
    first = _submitted(planner, AUTHOR)
    approvals.approve(first, user="U0TL")
    before = counts(db)
    again = planner.submit(
        env_name="production", file_arg="070_drop_legacy_flag.sql", author="U0PO", typed_in="C1"
    )
    assert again.unchanged and again.plan is not None and again.plan.id == first
    assert counts(db) == before and approvals.status(first)[1].state is PlanState.AWAITING_APPROVAL


def test_only_the_author_or_an_approver_replaces_an_open_plan(
    planner: Planner, approvals: Approvals, db: Database, migrations: Path
) -> None:
    first = _submitted(planner, AUTHOR)
    approvals.approve(first, user="U0TL")
    (migrations / "070_drop_legacy_flag.sql").write_text(HIGH_SQL + "-- v2\n")
    before = counts(db)
    for stranger in ("U0QA1", "U0ARCH"):  # a reviewer is not an approver of a production High plan
        with pytest.raises(Forbidden, match="only its author <@U0AUTHOR> or its Technical Lead or Product"):
            _submitted(planner, stranger)
    assert counts(db) == before
    second = _submitted(planner, "U0PO")  # an approver may
    assert approvals.status(first)[1].state is PlanState.SUPERSEDED
    assert (
        owed(db, first)[-1][1].startswith(f"Superseded by plan #{second}")
        and "<@U0PO>" in owed(db, first)[-1][1]
    )


def test_a_repeated_request_plans_once(planner: Planner, db: Database) -> None:
    first = planner.submit(
        env_name="production",
        file_arg="071_bookmarks.sql",
        author=AUTHOR,
        typed_in="C1",
        request_key="command:T1",
    )
    before = counts(db)
    again = planner.submit(
        env_name="production",
        file_arg="071_bookmarks.sql",
        author=AUTHOR,
        typed_in="C1",
        request_key="command:T1",
    )
    assert first.plan is not None and (again.duplicate or again.unchanged) and counts(db) == before


def test_approvals_expire(approvals: Approvals, db: Database, config: BotConfig, clock: Clock) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    approvals.approve(plan_id, user="U0TL")
    clock.now += timedelta(days=7, seconds=1)
    with pytest.raises(InvalidState, match="expired"):
        approvals.approve(plan_id, user="U0PO")
    plan_record, status = approvals.status(plan_id)
    assert status.state is PlanState.EXPIRED
    assert [e.kind for e in _events(db, plan_id)][-1] == "expired"
    assert approvals.expire_due() == []  # already expired, not twice
    assert plan_record.state == PlanState.EXPIRED


def test_break_glass_skips_only_the_role_check(approvals: Approvals, db: Database, config: BotConfig) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    outcome = approvals.approve(plan_id, user="ops:alice", slot="cto", break_glass_reason="CTO on a plane")
    assert not outcome.duplicate
    with db.session() as session:
        row = session.scalars(select(ApprovalRecord)).one()
        assert (row.via, row.reason, row.user_id) == ("cli", "CTO on a plane", "ops:alice")
    with pytest.raises(Forbidden, match="someone else"):
        approvals.approve(plan_id, user=AUTHOR, slot="cto", break_glass_reason="me")
    with pytest.raises(Forbidden, match="already signed plan #1 as CTO"):  # one operator, one slot
        approvals.approve(plan_id, user="ops:alice", slot="product_owner", break_glass_reason="again")
    with pytest.raises(InvalidState, match="CTO already approved"):
        approvals.approve(plan_id, user="ops:bob", slot="cto", break_glass_reason="twice")
    approvals.approve(plan_id, user="U0TL")  # the Slack way still works beside it
    assert counts(db)[0] == 2


def test_open_plans_lists_only_open_ones_in_the_channel(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    first = plan(db, config, "070_drop_legacy_flag.sql")
    second = plan(db, config, "071_bookmarks.sql")
    approvals.reject(first, user="U0TL", reason="no")
    assert [p.id for p, _ in approvals.open_plans("C0MIGRATIONS")] == [second]
    assert approvals.open_plans("C0OTHER") == []


def _events(db: Database, plan_id: int) -> list[EventRecord]:
    with db.session() as session:
        return list(session.scalars(select(EventRecord).where(EventRecord.plan_id == plan_id)))


def test_the_sweep_expires_overdue_plans_and_says_so_in_their_threads(
    approvals: Approvals, db: Database, config: BotConfig, clock: Clock
) -> None:
    old = plan(db, config, "070_drop_legacy_flag.sql")
    clock.now += timedelta(days=3)
    fresh = plan(db, config, "071_bookmarks.sql")
    with db.session() as session:
        stored = session.get(PlanRecord, fresh)
        assert stored is not None
        stored.created_at = clock.now  # planned three days after the first one
    clock.now += timedelta(days=4, seconds=1)
    assert [p.id for p in approvals.expire_due()] == [old]
    news = owed(db, old)
    assert news[0][0] == Kind.REDRAW and f"Plan #{old} expired" in news[1][1] and "<@U0AUTHOR>" in news[1][1]
    assert approvals.status(fresh)[1].state is PlanState.AWAITING_APPROVAL
    assert approvals.expire_due() == [] and len(owed(db, old)) == 2


def test_a_plan_found_expired_at_a_click_is_announced_like_the_sweep(
    approvals: Approvals, db: Database, config: BotConfig, clock: Clock
) -> None:
    plan_id = plan(db, config, "070_drop_legacy_flag.sql")
    clock.now += timedelta(days=8)
    with pytest.raises(InvalidState, match="expired"):
        approvals.approve(plan_id, user="U0TL")
    assert [kind for kind, _ in owed(db, plan_id)] == [Kind.REDRAW, Kind.THREAD]
    assert f"Plan #{plan_id} expired" in owed(db, plan_id)[1][1]


def test_decisions_owe_their_announcements_in_their_own_transaction(
    approvals: Approvals, db: Database, config: BotConfig
) -> None:
    plan_id = plan(db, config, "071_bookmarks.sql")
    outcome = approvals.approve(plan_id, user="U0TL", slot="technical_lead")
    assert [kind for kind, _ in owed(db, plan_id)] == [Kind.REDRAW, Kind.THREAD]
    assert len(outcome.owed) == 2 and "approved as Technical Lead" in owed(db, plan_id)[1][1]
    approvals.approve(plan_id, user="U0QA1", slot="qa")  # the redraw still waiting covers this one too
    assert [kind for kind, _ in owed(db, plan_id)] == [Kind.REDRAW, Kind.THREAD, Kind.THREAD]
    with pytest.raises(Forbidden):
        approvals.approve(plan_id, user=AUTHOR)
    assert len(owed(db, plan_id)) == 3  # a refusal owes nothing
