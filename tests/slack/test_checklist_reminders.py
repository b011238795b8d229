"""The post-migration checklist's reminder in Slack: after a run, the bot's watch posts it in the plan's
thread with a button per item left (Block Kit checked by the fake Web API); a signed click by the
Technical Lead ticks one and the thread says so, a stranger's click is refused privately. The policy's
hour is compressed to seconds in config; the target is a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo import load_example_schema
from bot.states import PlanState
from handlers.ids import tick_action
from tests.conftest import EXAMPLES
from tests.execution.test_runner import run_all
from tests.monitor.plans import file_source
from tests.slack.conftest import CHANNEL, RunningBot, start_bot, write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.signing import block_actions_body
from tests.slack.test_approvals_flow import approve, planned

FILE = "054_add_message_bookmarks.sql"


@pytest.fixture
def live_bot(
    tmp_path: Path, fake_slack: FakeSlack, migrations: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningBot]:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("REMINDER_TARGET", target_dsn)
    rate = tmp_path / "error_rate"
    rate.write_text("0.3\n")
    source = file_source(rate)
    policy = {
        "monitor": {"window_minutes": 0.05, "interval_seconds": 0.5, "reminder_hours": [0.001, 24, 168]}
    }
    config = write_config(
        tmp_path,
        migrations,
        dsn_env="REMINDER_TARGET",
        backup_dir=str(tmp_path / "backups"),
        procedure="zero_downtime",
        monitor={"sources": {"error_rate": source}},
        settings={"policy": policy},
    )
    yield from start_bot(tmp_path, fake_slack, config, migrations)


def press(bot: RunningBot, value: str, *, user: str, ts: str, response: str) -> dict[str, object]:
    body = block_actions_body(
        user_id=user,
        action_id=tick_action(int(value.rsplit(":", 1)[1]) + 1),
        value=value,
        channel_id=CHANNEL,
        message_ts=ts,
        response_url=bot.fake.response_url(response),
        block_id="choices",
    )
    assert bot.send(body)[0] == 200
    return bot.fake.wait_for_response(response, timeout=20)[0]


def test_a_reminder_posted_by_the_watch_is_ticked_from_its_button(live_bot: RunningBot) -> None:
    bot = live_bot
    plan_id = planned(bot, FILE)
    for user in ["U0PO", "U0TL", "U0QA1"]:  # production Low: peer review, Technical Lead, QA
        approve(bot, plan_id, user)
    assert run_all(bot.services, plan_id, operator="U0TL") is PlanState.MONITORING

    reminder = bot.fake.wait_until(
        lambda: [
            c
            for c in bot.fake.delivered("chat.postMessage")
            if "Post-migration checklist" in (c.args.get("text") or "")
        ],
        30,
        "the first reminder in the thread",
    )[0]
    assert reminder.args.get("thread_ts") == bot.plan(plan_id).message_ts
    blocks = json.dumps(reminder.args["blocks"])
    value = f"{plan_id}:0:5"  # "Critical user flows tested manually": for a person to tick
    assert tick_action(6) in blocks and value in blocks and f"{plan_id}:0:1" not in blocks
    assert reminder.answer is not None
    ts = reminder.answer["ts"]

    refused = press(bot, value, user="U0QA1", ts=ts, response="stranger")
    assert refused["response_type"] == "ephemeral" and "may answer incidents" in str(refused["text"])
    ticked = press(bot, value, user="U0TL", ts=ts, response="tick")
    assert "Ticked “Critical user flows tested manually”" in str(ticked["text"])
    bot.fake.wait_until(
        lambda: any(
            "ticked “Critical user flows tested manually”" in (c.args.get("text") or "")
            for c in bot.fake.delivered("chat.postMessage")
        ),
        20,
        "the tick told in the thread",
    )
