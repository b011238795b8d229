"""What holds from outside, through signed requests: re-planning, channels, retries, expiry, escaping,
bad input, and a busy bot still answering at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.states import PlanState
from handlers.ids import PlanAction
from storage.models import ApprovalRecord, EventRecord, PlanRecord
from tests.slack.conftest import AUTHOR, CHANNEL, RunningBot, start_bot, write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.signing import slash_command_body
from tests.slack.test_approvals_flow import HIGH, approve, planned, refused, rehearsed

PROD_CHANNEL = "C0PRODCHAN"


def everything_sent(fake: FakeSlack) -> str:
    return json.dumps([c.args for c in fake.calls], ensure_ascii=False)


def reply(bot: RunningBot, text: str, *, user: str = AUTHOR, name: str = "reply") -> str:
    before = len([r for n, r in bot.fake.responses if n == name])
    bot.command(text, user=user, response=name)
    answer = bot.fake.wait_for_response(name, count=before + 1)[-1]
    assert answer["response_type"] == "ephemeral"
    return answer["text"]


def test_replanning_the_same_file_answers_with_the_open_plan(bot: RunningBot) -> None:
    plan_id = planned(bot)
    before, posts = bot.counts(), len(bot.fake.calls_to("chat.postMessage"))
    text = reply(bot, f"plan {HIGH} production", user="U0PO")
    assert f"unchanged since plan #{plan_id} (awaiting approval, 0 of 5 sign-offs)" in text
    assert f"<https://fake.slack.com/archives/{CHANNEL}" in text  # the permalink of the open plan
    time.sleep(0.3)
    assert bot.counts() == before and len(bot.fake.calls_to("chat.postMessage")) == posts


def test_an_approved_plan_is_replaced_only_by_its_author_or_an_approver(bot: RunningBot) -> None:
    plan_id = planned(bot)
    rehearsed(bot, plan_id)
    for user in ["U0TL", "U0PO", "U0CTO", "U0ARCH", "U0SEC"]:
        approve(bot, plan_id, user)
    assert bot.plan(plan_id).state == PlanState.APPROVED
    path = bot.migrations / HIGH
    path.write_text(path.read_text() + "-- one more comment\n")
    before = bot.counts()
    refusal = reply(bot, f"plan {HIGH} production", user="U0QA1")
    assert f"only its author <@{AUTHOR}> or its Technical Lead or Product Owner or CTO" in refusal
    assert bot.counts() == before and bot.plan(plan_id).state == PlanState.APPROVED
    new_id = planned(bot)  # the author may
    assert bot.plan(plan_id).state == PlanState.SUPERSEDED
    old_thread = [
        c.args["text"]
        for c in bot.fake.wait_for("chat.postMessage", count=4 + 5 + 4 + 1)
        if c.args.get("thread_ts") == bot.plan(plan_id).message_ts
    ]
    assert any(f"Superseded by plan #{new_id}" in t and f"planned by <@{AUTHOR}>" in t for t in old_thread)


@pytest.fixture
def prod_channel_bot(tmp_path: Path, fake_slack: FakeSlack, migrations: Path) -> Iterator[RunningBot]:
    config = write_config(tmp_path, migrations, channel=PROD_CHANNEL)
    yield from start_bot(tmp_path, fake_slack, config, migrations)


def test_a_plan_goes_to_its_environments_channel_with_a_link_where_it_was_asked(
    prod_channel_bot: RunningBot,
) -> None:
    bot = prod_channel_bot
    bot.command(f"plan {HIGH} production")
    posts = bot.fake.wait_for("chat.postMessage", count=5)
    plan = bot.plan(1)
    assert posts[0].args["channel"] == PROD_CHANNEL and plan.channel_id == PROD_CHANNEL
    assert all(c.args["channel"] == PROD_CHANNEL for c in posts[1:4])
    link = posts[4].args
    assert link["channel"] == CHANNEL and "thread_ts" not in link
    assert f"is posted <https://fake.slack.com/archives/{PROD_CHANNEL}|in <#{PROD_CHANNEL}>>" in link["text"]
    bot.command("plan 066_index_without_concurrently.sql staging")  # staging has no channel: posted here
    assert bot.fake.wait_for("chat.postMessage", count=9)[5].args["channel"] == CHANNEL


def test_a_retried_or_replayed_command_plans_once(bot: RunningBot) -> None:
    body = slash_command_body(
        f"plan {HIGH} production", user_id=AUTHOR, channel_id=CHANNEL, response_url=bot.fake.response_url()
    )
    assert bot.send(body)[0] == 200
    assert bot.send(body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})[0] == 200
    assert bot.send(body)[0] == 200  # replayed within the signature's five minutes
    bot.fake.wait_for("chat.postMessage", count=4)
    time.sleep(0.5)
    assert bot.counts()["plans"] == 1 and len(bot.fake.calls_to("chat.postMessage")) == 4


def test_a_plan_found_expired_at_a_click_is_redrawn_and_announced(bot: RunningBot) -> None:
    plan_id = planned(bot)
    with bot.services.db.session() as session:
        stored = session.get(PlanRecord, plan_id)
        assert stored is not None
        stored.created_at -= timedelta(days=8)
    assert "expired" in refused(bot, plan_id, "U0TL")
    update = bot.fake.wait_for("chat.update")[0].args
    assert update["ts"] == bot.plan(plan_id).message_ts and "plan-approve" not in json.dumps(update["blocks"])
    news = bot.fake.wait_for("chat.postMessage", count=5)[4].args
    assert news["thread_ts"] == bot.plan(plan_id).message_ts and f"Plan #{plan_id} expired" in news["text"]
    assert bot.plan(plan_id).state == PlanState.EXPIRED


def test_what_a_migration_says_cannot_ping_and_its_passwords_never_leave(bot: RunningBot) -> None:
    (bot.migrations / "090_role.sql").write_text(
        "-- <!channel> <@U0CTO> please look & approve\n"
        "-- connect with postgresql://admin:dsn-secret-1@db.internal/prod\n"
        "CREATE ROLE reporting LOGIN PASSWORD 'pw-secret-2';\n"
        "ALTER ROLE reporting WITH PASSWORD 'pw-secret-3';\n"
    )
    bot.command("plan 090_role.sql production")
    bot.fake.wait_for("chat.postMessage", count=4)
    sent = everything_sent(bot.fake)
    assert "&lt;!channel&gt; &lt;@U0CTO&gt; please look &amp; approve" in sent
    assert "<!channel>" not in sent and "<@U0CTO>" not in sent
    for secret in ("dsn-secret-1", "pw-secret-2", "pw-secret-3"):
        assert secret not in sent
    assert "PASSWORD '***'" in sent
    with bot.services.db.session() as session:
        stored = json.dumps([(e.message, e.data) for e in session.scalars(select(EventRecord))])
    assert not any(secret in stored for secret in ("dsn-secret-1", "pw-secret-2", "pw-secret-3"))


def test_a_file_name_of_5000_characters_gets_an_answer(bot: RunningBot) -> None:
    status, body = bot.command("plan " + "a" * 5000 + ".sql production")
    assert status == 200 and "longer than 500 characters" in body
    status, _ = bot.command("plan " + "b" * 400 + ".sql production")  # too long for the file system
    assert status == 200
    assert "no migration" in bot.fake.wait_for_response()[0]["text"]
    assert bot.counts()["plans"] == 0


def test_unknown_buttons_and_modals_get_200_not_404(bot: RunningBot) -> None:
    plan_id = planned(bot)
    status, _ = bot.click("plan-button-of-an-older-version", plan_id, user="U0TL")
    assert status == 200


def test_ten_people_clicking_at_once(bot: RunningBot) -> None:
    plan_id = planned(bot)
    rehearsed(bot, plan_id)
    users = ["U0TL", "U0TL2", "U0PO", "U0CTO", "U0ARCH", "U0SEC", "U0QA1", "U0QA2", AUTHOR, "U0STRANGER"]
    with ThreadPoolExecutor(len(users)) as pool:
        statuses = list(pool.map(lambda u: bot.click(PlanAction.APPROVE, plan_id, user=u)[0], users))
    assert statuses == [200] * len(users)
    bot.fake.wait_for_response("click", count=5)  # the five refused: a second Technical Lead, QA x2, …
    deadline = time.monotonic() + 10
    while bot.plan(plan_id).state != PlanState.APPROVED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bot.plan(plan_id).state == PlanState.APPROVED
    with bot.services.db.session() as session:
        slots = session.scalars(select(ApprovalRecord.slot)).all()
    assert sorted(slots) == sorted(
        ["technical_lead", "product_owner", "cto", "architecture_review", "security_review"]
    )
    lines = [c.args["text"] for c in bot.fake.wait_for("chat.postMessage", count=4 + 5)[4:]]
    assert len(lines) == 5 and sum("is *approved*" in line for line in lines) == 1


@pytest.fixture
def busy_bot(
    tmp_path: Path,
    fake_slack: FakeSlack,
    migrations: Path,
    hanging_target: int,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningBot]:
    monkeypatch.setenv("HANGING_DSN", f"postgresql://u@127.0.0.1:{hanging_target}/db")
    config = write_config(tmp_path, migrations, dsn_env="HANGING_DSN", settings={"serve": {"workers": 1}})
    yield from start_bot(tmp_path, fake_slack, config, migrations)


def test_a_busy_bot_still_acks_at_once_queues_and_does_the_work(busy_bot: RunningBot) -> None:
    bot = busy_bot
    started = time.monotonic()
    first = bot.command(f"plan {HIGH} production")  # its target hangs for its connect timeout
    second = bot.command("plan 066_index_without_concurrently.sql production")
    help_reply = bot.command("help")
    assert time.monotonic() - started < 1.5  # acks do not wait for the work
    assert [first[0], second[0], help_reply[0]] == [200, 200, 200]
    assert "queued behind 1 other request" in second[1]
    bot.command("list", response="list")  # quick work has its own pool: answered while planning hangs
    assert "No open plans" in bot.fake.wait_for_response("list", timeout=1.5)[0]["text"]
    bot.fake.wait_for("chat.postMessage", count=8, timeout=20)
    assert bot.counts()["plans"] == 2
