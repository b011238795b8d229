"""``/migrate plan`` and ``/migrate help`` as Slack sends them, answered through the fake Web API."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from handlers.commands import USAGE
from tests.slack.conftest import AUTHOR, CHANNEL, SECRET, RunningBot, start_bot, write_config
from tests.slack.fake_api import Call, FakeSlack
from tests.slack.signing import post, signed_headers, slash_command_body


def _blocks(call: Call) -> list[dict]:
    blocks = call.args["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _text_of(blocks: list[dict]) -> str:
    parts = []
    for block in blocks:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                parts.append(block[key]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(parts)


def test_help_is_the_ack(bot: RunningBot) -> None:
    status, body = bot.command("help")
    assert status == 200
    assert "/migrate plan <file> [environment]" in body
    missing = [verb for verb in USAGE if f"/migrate {verb}" not in body and f"`{verb} " not in body]
    assert missing == [], "help names every command"
    assert bot.fake.calls_to("chat.postMessage") == []


def test_plan_posts_the_plan_then_its_thread(bot: RunningBot) -> None:
    started = time.monotonic()
    status, body = bot.command("plan 066_index_without_concurrently.sql production")
    assert status == 200 and "Planning `066_index_without_concurrently.sql` for production" in body
    assert time.monotonic() - started < 3  # Slack's deadline for the ack
    plan_call = bot.fake.wait_for("chat.postMessage")[0]
    assert plan_call.args["channel"] == CHANNEL
    blocks = _blocks(plan_call)
    text = _text_of(blocks)
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"].startswith("Plan #1: 066_index")
    assert "Complexity*\n🟡 Medium" in text  # offline: the table's size is unknown, so treated as large
    assert "size of nchat.nchat_messages unknown" in text
    assert "takes a SHARE lock" in text and "CREATE INDEX CONCURRENTLY" in text
    assert "SHARE lock" in text and "L5: create index idx_messages_created_at" in text
    assert "Rollback script generated: every statement is reversible" in text
    assert "⏳ Technical Lead: waiting for Technical Lead" in text and "⏳ QA: waiting for QA" in text
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["plan-approve", "plan-request-changes", "plan-reject", "plan-rehearse"]
    thread = bot.fake.wait_for("chat.postMessage", count=4)[1:]
    plan = bot.plan(1)
    assert plan.message_ts and all(c.args["thread_ts"] == plan.message_ts for c in thread)
    assert "CREATE INDEX idx_messages_created_at" in thread[0].args["text"]
    assert "DROP INDEX nchat.idx_messages_created_at;" in thread[1].args["text"]
    assert (
        "Pre-Migration" not in thread[2].args["text"]
        and "Full database backup completed" in thread[2].args["text"]
    )
    assert (plan.state, plan.author, plan.channel_id) == ("awaiting_approval", AUTHOR, CHANNEL)


def test_a_hand_written_rollback_is_used_and_named(bot: RunningBot) -> None:
    bot.command("plan 054_add_message_bookmarks.sql")
    calls = bot.fake.wait_for("chat.postMessage", count=4)
    assert "Rollback script found: 054_add_message_bookmarks.rollback.sql" in _text_of(_blocks(calls[0]))
    assert calls[2].args["text"].startswith("*Rollback SQL (found beside the migration)*")
    assert "DROP TABLE IF EXISTS nchat.nchat_message_bookmarks CASCADE;" in calls[2].args["text"]


def test_sql_over_the_message_limit_goes_as_a_file(bot: RunningBot) -> None:
    statements = "".join(f"ALTER TABLE nchat.t{i} ADD COLUMN c{i} text;\n" for i in range(120))
    (bot.migrations / "080_many.sql").write_text(statements)
    bot.command("plan 080_many.sql")
    complete = bot.fake.wait_for("files.completeUploadExternal", count=2)
    assert complete[0].args["thread_ts"] and complete[0].args["channel_id"] == CHANNEL
    uploaded = b"".join(bot.fake.uploads.values()).decode()
    assert statements.strip() in uploaded and "DROP COLUMN c119" in uploaded


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "plan nothing_here.sql",
            "no migration `nothing_here.sql` in the migrations directory of production",
        ),
        ("plan empty.sql", "`empty.sql` is empty"),
        ("plan ../secret.sql", "`../secret.sql` is outside the migrations directory of production"),
        ("plan broken.sql", "syntax error at line 2, column 31"),
        ("plan 066_index_without_concurrently.sql moon", "unknown environment 'moon'"),
        ("plan 054_add_message_bookmarks.rollback.sql", "is a rollback script"),
    ],
)
def test_bad_input_gets_an_ephemeral_reply_and_stores_nothing(bot: RunningBot, text: str, words: str) -> None:
    status, _ = bot.command(text)
    assert status == 200
    reply = bot.fake.wait_for_response()[0]
    assert reply["response_type"] == "ephemeral"
    assert words in reply["text"]
    assert bot.counts() == {"plans": 0, "events": 0, "approvals": 0}
    assert bot.fake.calls_to("chat.postMessage") == []


def test_a_file_over_the_policy_size_limit_gets_an_ephemeral_reply_and_stores_nothing(
    tmp_path: Path, fake_slack: FakeSlack, migrations: Path
) -> None:
    config = write_config(tmp_path, migrations, settings={"policy": {"planning": {"max_file_bytes": 200}}})
    (migrations / "090_big.sql").write_text("ALTER TABLE nchat.t ADD COLUMN c text;\n" * 10)
    for bot in start_bot(tmp_path, fake_slack, config, migrations):
        status, _ = bot.command("plan 090_big.sql")
        assert status == 200
        reply = bot.fake.wait_for_response()[0]
        assert reply["response_type"] == "ephemeral"
        assert "`090_big.sql` is 390 bytes, over the 200 a plan may read" in reply["text"]
        assert "planning.max_file_bytes" in reply["text"]
        assert bot.counts() == {"plans": 0, "events": 0, "approvals": 0}
        assert bot.fake.calls_to("chat.postMessage") == []


def test_wrong_argument_count_is_answered_in_the_ack(bot: RunningBot) -> None:
    status, body = bot.command("plan a.sql production extra")
    assert status == 200 and "Usage: `/migrate plan <file> [environment] [--ref <branch|tag|commit>]`" in body
    assert bot.counts()["plans"] == 0


@pytest.mark.parametrize("problem", ["bad signature", "old timestamp"])
def test_unsigned_or_replayed_requests_are_refused(bot: RunningBot, problem: str) -> None:
    body = slash_command_body(
        "plan 066_index_without_concurrently.sql",
        user_id=AUTHOR,
        channel_id=CHANNEL,
        response_url=bot.fake.response_url(),
    )
    if problem == "bad signature":
        headers = signed_headers(body, "not-the-secret")
    else:
        headers = signed_headers(body, SECRET, timestamp=int(time.time()) - 600)
    status, _ = post(bot.url, body, headers)
    assert status == 401
    time.sleep(0.3)
    assert [c.method for c in bot.fake.calls] == ["auth.test"]  # Bolt's start-up check only
    assert bot.counts()["plans"] == 0


def test_a_rate_limited_post_is_retried_after_retry_after(bot: RunningBot) -> None:
    bot.fake.rate_limit_next("chat.postMessage", retry_after=1)
    bot.command("plan 066_index_without_concurrently.sql")
    calls = bot.fake.wait_for("chat.postMessage", count=5, timeout=15)
    assert calls[1].at - calls[0].at >= 1.0  # waited out Retry-After
    assert calls[0].args["channel"] == calls[1].args["channel"] == CHANNEL
    assert bot.plan(1).message_ts is not None


def test_slack_refusing_the_post_tells_the_user_and_keeps_the_plan(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot.fake.fail_next("chat.postMessage", "not_in_channel")
    bot.command("plan 066_index_without_concurrently.sql")
    reply = bot.fake.wait_for_response()[0]
    assert reply["response_type"] == "ephemeral"
    assert "not posted: not_in_channel" in reply["text"] and "/invite" in reply["text"]
    assert "`/migrate repost 1`" in reply["text"]
    assert bot.plan(1).state == "awaiting_approval"  # stored before it was announced
    assert bot.fake.token not in caplog.text and SECRET not in caplog.text


def test_no_secret_reaches_slack(bot: RunningBot) -> None:
    bot.command("plan 061_drop_legacy_field.sql")
    bot.fake.wait_for("chat.postMessage", count=4)
    sent = json.dumps([c.args for c in bot.fake.calls])
    assert SECRET not in sent and bot.fake.token not in sent
