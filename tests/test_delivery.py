"""The outbox and its deliverer, against the real store: order, once, Retry-After, backoff, giving up,
refusals that wait for a repost, and a restart that delivers what is pending."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Services, build_services
from bot.config import BotConfig, Settings, parse_config
from bot.delivery import POLL_SECONDS, Deliverer
from bot.notifier import DeliveryDeferred, DeliveryFailed, MessageRef, Part, PlanView
from bot.outbox import Delivery
from storage.models import ApprovalRecord, EventRecord, OutboxRecord, PlanRecord, aware
from tests.clock import Clock

AUTHOR = "U0AUTHOR"


class ScriptedSlack:
    """A Notifier that records what it was asked to send and fails as scripted, call by call."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.script: list[Exception] = []
        self.posts = 0

    def _send(self, what: str) -> None:
        if self.script:
            raise self.script.pop(0)
        self.sent.append(what)

    def post_plan(self, view: PlanView, *, channel: str) -> MessageRef:
        self._send(f"plan {view.meta.plan_id if view.meta else '?'} in {channel}")
        self.posts += 1
        return MessageRef(channel, f"1700000000.{self.posts:06d}")

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        assert view.meta is not None
        self._send(
            f"redraw {ref.ts} {view.meta.state} {len(view.meta.status.given) if view.meta.status else 0}"
        )

    def post_part(self, view: PlanView, ref: MessageRef, part: Part) -> None:
        self._send(f"{part.value} in {ref.ts}")

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._send(f"thread {ref.ts}: {text.splitlines()[0][:40].strip()}")

    def post_link(self, view: PlanView, ref: MessageRef, *, channel: str) -> None:
        self._send(f"link in {channel} to {ref.channel}")

    def post_ephemeral(self, *, channel: str, user: str, text: str) -> None:
        self._send(f"to {user}: {text}")

    def permalink(self, ref: MessageRef) -> str | None:
        return None


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "071_bookmarks.sql").write_text("CREATE TABLE nchat.bookmarks (id bigint PRIMARY KEY);\n")
    data = {
        "environments": {"production": {"migrations_dir": str(migrations), "server_version_num": 180000}},
        "roles": {
            "technical_lead": {"users": ["U0TL"]},
            "product_owner": {"users": ["U0PO"]},
            "cto": {"users": ["U0CTO"]},
            "qa": {"users": ["U0QA1", "U0QA2"]},
            "architect": {"users": ["U0ARCH"]},
            "security": {"users": ["U0SEC"]},
            "on_call": {"users": ["U0ONCALL"]},
        },
        "delivery": {"retry_max_seconds": 8, "give_up_after_hours": 1},
    }
    return parse_config(data, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(tmp_path: Path, config: BotConfig, clock: Clock) -> Services:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/state.db")
    return build_services(settings, config, clock=clock)


@pytest.fixture
def slack() -> ScriptedSlack:
    return ScriptedSlack()


def deliverer(services: Services, slack: ScriptedSlack, clock: Clock) -> Deliverer:
    return Deliverer(db=services.db, config=services.config, notifier=slack, clock=clock)


def plan_id(services: Services, typed_in: str = "C0HERE") -> int:
    submission = services.planner.submit(
        env_name="production", file_arg="071_bookmarks.sql", author=AUTHOR, typed_in=typed_in
    )
    assert submission.plan is not None
    return submission.plan.id


def states(services: Services) -> list[str]:
    with services.db.session() as session:
        return list(session.scalars(select(OutboxRecord.state).order_by(OutboxRecord.id)))


def test_a_plan_and_its_thread_are_delivered_in_order_once(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    pid = plan_id(services)
    services.approvals.approve(pid, user="U0TL", slot="technical_lead")
    sender = deliverer(services, slack, clock)
    assert sender.deliver_due() == 6
    ts = "1700000000.000001"
    assert slack.sent == [
        f"plan {pid} in C0HERE",
        f"migration in {ts}",
        f"rollback in {ts}",
        f"checklist in {ts}",
        f"redraw {ts} awaiting_approval 1",
        f"thread {ts}: ✅ <@U0TL> approved as Technical Lead (1",
    ]
    assert sender.deliver_due() == 0 and deliverer(services, slack, clock).deliver_due() == 0
    assert set(states(services)) == {Delivery.SENT}


def test_a_deliverer_no_longer_wanted_sends_nothing_more(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    """A worker whose bot was killed (its parent gone) stops between two messages; what it left is still
    owed, and the next leader sends it."""
    plan_id(services)
    wanted = iter([True, False])
    orphan = Deliverer(
        db=services.db, config=services.config, notifier=slack, clock=clock, wanted=lambda: next(wanted)
    )
    assert orphan.deliver_due() == 1 and len(slack.sent) == 1
    assert states(services).count(Delivery.PENDING) == 3
    assert deliverer(services, slack, clock).deliver_due() == 3 and len(slack.sent) == 4


def test_a_rate_limit_pauses_delivery_for_retry_after(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    plan_id(services)
    slack.script = [DeliveryDeferred("ratelimited", retry_after=30)]
    sender = deliverer(services, slack, clock)
    assert sender.deliver_due() == 0 and slack.sent == []
    clock.now += timedelta(seconds=29)
    assert sender.deliver_due() == 0
    clock.now += timedelta(seconds=1)
    assert sender.deliver_due() == 4 and slack.sent[0].startswith("plan")
    assert sender.idle_seconds() == POLL_SECONDS  # the pause is over: back to polling, not spinning


def test_outages_back_off_then_give_up_and_say_so(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    pid = plan_id(services)
    sender = deliverer(services, slack, clock)
    waits = []
    for _ in range(6):
        slack.script = [DeliveryDeferred("Slack answered HTTP 503")]
        before = clock.now
        sender.deliver_due()
        with services.db.session() as session:
            row = session.scalars(select(OutboxRecord).order_by(OutboxRecord.id)).first()
            assert row is not None
            waits.append((row.not_before.replace(tzinfo=before.tzinfo) - before).total_seconds())
        clock.now = row.not_before.replace(tzinfo=before.tzinfo)
    assert waits == [1, 2, 4, 8, 8, 8]  # doubling, capped at retry_max_seconds
    clock.now += timedelta(hours=1)
    slack.script = [DeliveryDeferred("Slack answered HTTP 503")]
    sender.deliver_due()
    with services.db.session() as session:
        problems = services.outbox.problems(session, services.approvals.status(pid)[0])
    assert problems and "gave up after 1 h: Slack answered HTTP 503" in problems[0]


def test_a_refusal_waits_for_a_repost_and_blocks_only_its_own_stream(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    first = plan_id(services, typed_in="C0GONE")
    slack.script = [DeliveryFailed("channel_not_found")]
    sender = deliverer(services, slack, clock)
    assert sender.deliver_due() == 0
    plan, _ = services.approvals.status(first)
    with services.db.session() as session:
        problems = services.outbox.problems(session, plan)
    assert problems == [
        f"⚠️ Plan message not posted: channel_not_found; invite the bot (`/invite @migrate-bot`), then "
        f"`/migrate repost {first}`",
        "⏳ 3 message(s) waiting for Slack (queued); they are sent as soon as Slack accepts them",
    ]
    services.approvals.approve(first, user="U0TL", slot="technical_lead")
    assert sender.deliver_due() == 0  # the thread cannot go before the plan
    with services.db.session() as session:
        assert services.outbox.repost(session, plan) == 1
    assert sender.deliver_due() == 6 and slack.sent[0] == f"plan {first} in C0GONE"


def test_a_restart_delivers_what_is_pending(services: Services, slack: ScriptedSlack, clock: Clock) -> None:
    plan_id(services)
    slack.script = [DeliveryDeferred("cannot reach Slack (ConnectionRefusedError)")]
    deliverer(services, slack, clock).deliver_due()
    clock.now += timedelta(seconds=1)
    restarted = deliverer(services, ScriptedSlack(), clock)  # a new process, with no memory
    assert restarted.deliver_due() == 4
    assert states(services) == [Delivery.SENT] * 4


def test_a_burst_of_decisions_costs_one_redraw(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    pid = plan_id(services)
    deliverer(services, slack, clock).deliver_due()
    services.approvals.approve(pid, user="U0TL", slot="technical_lead")
    services.approvals.approve(pid, user="U0QA1", slot="qa")
    services.approvals.approve(pid, user="U0PO", slot="peer_review")
    slack.sent.clear()
    deliverer(services, slack, clock).deliver_due()
    assert [s.split()[0] for s in slack.sent] == ["redraw", "thread", "thread", "thread"]
    assert slack.sent[0].endswith("approved 3")  # drawn from the state at delivery


def test_the_rollback_and_checklist_follow_a_refused_sql_post(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    plan_id(services)

    class RefusesSql(ScriptedSlack):
        def post_part(self, view: PlanView, ref: MessageRef, part: Part) -> None:
            if part is Part.MIGRATION:
                raise DeliveryFailed("msg_too_long")
            super().post_part(view, ref, part)

    refusing = RefusesSql()
    assert deliverer(services, refusing, clock).deliver_due() == 3
    assert [s.split()[0] for s in refusing.sent] == ["plan", "rollback", "checklist"]
    assert states(services) == [Delivery.SENT, Delivery.FAILED, Delivery.SENT, Delivery.SENT]


def test_one_clock_dates_everything_the_bot_stores(
    services: Services, slack: ScriptedSlack, clock: Clock
) -> None:
    clock.now = clock.now.replace(year=2031, microsecond=0)
    pid = plan_id(services)
    services.approvals.approve(pid, user="U0TL", slot="technical_lead")
    deliverer(services, slack, clock).deliver_due()
    with services.db.session() as session:
        stamps = [aware(e.at) for e in session.scalars(select(EventRecord))]
        stamps += [aware(a.at) for a in session.scalars(select(ApprovalRecord))]
        stamps += [aware(r.created_at) for r in session.scalars(select(OutboxRecord))]
        plan = session.get(PlanRecord, pid)
        assert plan is not None
        stamps += [aware(plan.created_at), aware(plan.updated_at)]
    assert len(stamps) > 8 and set(stamps) == {clock.now}
