"""Approvals end to end: signed button clicks and modal submissions, answered through the fake Web API."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from bot.states import PlanState
from handlers.ids import Modal, ModalInput, PlanAction
from storage.models import ApprovalRecord, PlanRecord, RehearsalRecord
from tests.slack.conftest import AUTHOR, RunningBot

HIGH = "061_drop_legacy_field.sql"  # production High: TL + PO + CTO, architecture and security review


def planned(bot: RunningBot, file: str = HIGH) -> int:
    before = len(bot.fake.calls_to("chat.postMessage"))
    bot.command(f"plan {file} production")
    bot.fake.wait_for("chat.postMessage", count=before + 4)
    with bot.services.db.session() as session:
        return int(session.scalar(select(func.max(PlanRecord.id))) or 0)


def rehearsed(bot: RunningBot, plan_id: int) -> None:
    """A passing rehearsal of the plan's bytes, stored as ``bot.execution.rehearsing`` stores one: the gate
    a production High plan needs (tests/slack/test_runs.py rehearses one for real, through Slack)."""
    with bot.services.db.session() as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        session.add(
            RehearsalRecord(
                plan_id=plan_id,
                sha256=plan.sha256,
                rollback_sha256=plan.rollback_sha256,
                state="passed",
                operator="U0TL",
                report={},
            )
        )


def approve(bot: RunningBot, plan_id: int, user: str, **kw: str) -> None:
    """Click Approve and wait for both announcements: the redrawn plan and the line in its thread."""
    updates, posts = len(bot.fake.calls_to("chat.update")), len(bot.fake.calls_to("chat.postMessage"))
    status, _ = bot.click(PlanAction.APPROVE, plan_id, user=user, **kw)
    assert status == 200
    bot.fake.wait_for("chat.update", count=updates + 1)
    bot.fake.wait_for("chat.postMessage", count=posts + 1)


def refused(bot: RunningBot, plan_id: int, user: str, action: str = PlanAction.APPROVE) -> str:
    responses = len([r for n, r in bot.fake.responses if n == "click"])
    bot.click(action, plan_id, user=user)
    reply = bot.fake.wait_for_response("click", count=responses + 1)[-1]
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    return reply["text"]


def update_text(bot: RunningBot) -> str:
    blocks = bot.fake.last("chat.update").args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return json.dumps(blocks, ensure_ascii=False)


def test_the_right_clicks_approve_a_production_high_plan(bot: RunningBot) -> None:
    plan_id = planned(bot)
    rehearsed(bot, plan_id)
    for user in ["U0TL", "U0PO", "U0CTO", "U0ARCH", "U0SEC"]:  # U0SEC through the S0SEC user group
        approve(bot, plan_id, user)
    plan = bot.plan(plan_id)
    assert plan.state == PlanState.APPROVED
    text = update_text(bot)
    assert "✅ Technical Lead: <@U0TL>" in text and "✅ Security Review: <@U0SEC>" in text
    assert "plan-approve" not in text  # no buttons on an approved plan
    last = bot.fake.last("chat.postMessage").args
    assert last["thread_ts"] == plan.message_ts
    assert f"Plan #{plan_id} is *approved*" in last["text"] and f"<@{AUTHOR}>" in last["text"]
    assert [c.args["usergroup"] for c in bot.fake.calls_to("usergroups.users.list")].count("S0SEC") == 1


@pytest.mark.parametrize(
    ("user", "words"),
    [
        (AUTHOR, "someone else must review it"),
        ("U0STRANGER", "you hold none of these roles"),
    ],
)
def test_forbidden_clicks_are_refused_and_change_nothing(bot: RunningBot, user: str, words: str) -> None:
    plan_id = planned(bot)
    before, updates = bot.counts(), len(bot.fake.calls_to("chat.update"))
    assert words in refused(bot, plan_id, user)
    assert bot.counts() == before
    assert len(bot.fake.calls_to("chat.update")) == updates


def test_a_role_is_approved_once(bot: RunningBot) -> None:
    plan_id = planned(bot)
    approve(bot, plan_id, "U0TL")
    before = bot.counts()
    assert "you hold none of these roles" in refused(bot, plan_id, "U0TL2")  # the other Technical Lead
    assert "each sign-off needs a different person" in refused(bot, plan_id, "U0TL")
    assert bot.counts() == before


def test_a_retry_and_a_double_click_leave_one_approval(bot: RunningBot) -> None:
    plan_id = planned(bot)
    first_ts = f"{time.time():.6f}"
    approve(bot, plan_id, "U0TL", action_ts=first_ts)
    after_first = bot.counts()
    status, _ = bot.click(
        PlanAction.APPROVE, plan_id, user="U0TL", action_ts=first_ts, **{"X-Slack-Retry-Num": "1"}
    )
    assert status == 200
    bot.click(PlanAction.APPROVE, plan_id, user="U0TL")  # a second click, another action_ts
    bot.fake.wait_for_response("click")  # the double click is told why, the retry is silent
    time.sleep(0.3)
    assert bot.counts() == after_first
    assert after_first["approvals"] == 1
    assert len(bot.fake.calls_to("chat.update")) == 1


def test_a_member_with_two_roles_picks_one_in_a_modal(bot: RunningBot) -> None:
    plan_id = planned(bot)
    bot.click(PlanAction.APPROVE, plan_id, user="U0TWOHATS")
    view = bot.fake.wait_for("views.open")[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    options = [o["value"] for o in view["blocks"][0]["element"]["options"]]
    assert view["callback_id"] == Modal.APPROVE_AS and options == ["technical_lead", "cto"]
    choice = {
        ModalInput.SLOT: {ModalInput.SLOT: {"type": "radio_buttons", "selected_option": {"value": "cto"}}}
    }
    status, body = bot.submit(Modal.APPROVE_AS, plan_id, choice, user="U0TWOHATS", view_id="V0PICK1")
    assert status == 200 and body == ""
    bot.fake.wait_for("chat.update")
    with bot.services.db.session() as session:
        rows = session.scalars(select(ApprovalRecord)).all()
        assert [(a.slot, a.user_id) for a in rows] == [("cto", "U0TWOHATS")]


def test_reject_asks_why_and_ends_the_plan(bot: RunningBot) -> None:
    plan_id = planned(bot)
    bot.click(PlanAction.REJECT, plan_id, user="U0PO")
    view = bot.fake.wait_for("views.open")[0].args["view"]
    assert (json.loads(view) if isinstance(view, str) else view)["callback_id"] == Modal.REJECT

    def reason(text: str) -> dict:
        return {ModalInput.REASON: {ModalInput.REASON: {"type": "plain_text_input", "value": text}}}

    status, body = bot.submit(Modal.REJECT, plan_id, reason("   "), user="U0PO", view_id="V0REJ1")
    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert bot.plan(plan_id).state == PlanState.AWAITING_APPROVAL
    status, body = bot.submit(Modal.REJECT, plan_id, reason("back up first"), user="U0PO", view_id="V0REJ2")
    assert status == 200 and body == ""
    bot.fake.wait_for("chat.update")
    assert bot.plan(plan_id).state == PlanState.REJECTED
    news = bot.fake.wait_for("chat.postMessage", count=5)[4].args["text"]  # after the plan and its thread
    assert "rejected plan" in news and "back up first" in news and f"<@{AUTHOR}>" in news
    assert "only a plan awaiting approval can be approved" in refused(bot, plan_id, "U0TL")


def test_only_an_approver_may_reject(bot: RunningBot) -> None:
    plan_id = planned(bot)
    assert "may reject plan" in refused(bot, plan_id, "U0QA1", PlanAction.REJECT)
    assert bot.fake.calls_to("views.open") == []


def test_request_changes_tells_the_author_and_keeps_the_plan_open(bot: RunningBot) -> None:
    plan_id = planned(bot)
    bot.click(PlanAction.REQUEST_CHANGES, plan_id, user="U0ARCH")
    bot.fake.wait_for("views.open")
    values = {
        ModalInput.COMMENT: {ModalInput.COMMENT: {"type": "plain_text_input", "value": "<!channel> batch it"}}
    }
    bot.submit(Modal.REQUEST_CHANGES, plan_id, values, user="U0ARCH", view_id="V0CHG1")
    bot.fake.wait_for("chat.update")
    news = bot.fake.wait_for("chat.postMessage", count=5)[4].args["text"]
    assert "requests changes" in news and "&lt;!channel&gt; batch it" in news  # typed text cannot ping
    assert bot.plan(plan_id).state == PlanState.AWAITING_APPROVAL


def test_a_changed_file_supersedes_the_plan_and_voids_its_approvals(bot: RunningBot) -> None:
    old = planned(bot)
    approve(bot, old, "U0TL")
    path = bot.migrations / HIGH
    path.write_text(path.read_text() + "-- reviewed\n")
    assert "changed since plan" in refused(bot, old, "U0PO")
    posts = len(bot.fake.calls_to("chat.postMessage"))
    new = planned(bot)
    bot.fake.wait_for(
        "chat.postMessage", count=posts + 5
    )  # the plan, its thread, and the note in the old thread
    assert bot.plan(old).state == PlanState.SUPERSEDED
    old_thread = [
        c.args
        for c in bot.fake.calls_to("chat.postMessage")
        if c.args.get("thread_ts") == bot.plan(old).message_ts
    ]
    assert any(
        f"Superseded by plan #{new}" in a["text"] and "no longer count" in a["text"] for a in old_thread
    )
    assert "is superseded" in refused(bot, old, "U0PO")
    assert bot.counts()["approvals"] == 1  # the old one, not carried over


def test_status_and_list(bot: RunningBot) -> None:
    plan_id = planned(bot)
    approve(bot, plan_id, "U0TL")
    bot.command(f"status {plan_id}", response="status")
    status = bot.fake.wait_for_response("status")[0]
    assert status["response_type"] == "ephemeral"
    assert "✅ Technical Lead: <@U0TL>" in status["text"] and "⏳ CTO: waiting for CTO" in status["text"]
    bot.command("list", response="list")
    listing = bot.fake.wait_for_response("list")[0]["text"]
    assert f"*#{plan_id}* `{HIGH}`" in listing and "missing: Product Owner, CTO" in listing
    bot.command("status 999", response="missing")
    assert "no plan #999" in bot.fake.wait_for_response("missing")[0]["text"]
