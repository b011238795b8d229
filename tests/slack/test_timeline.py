"""``/migrate timeline`` through signed commands against the fake Slack Web API: the export is owed through
the outbox and uploaded to the plan's thread in Slack's three steps (an upload URL per file, the bytes
posted to it, one completion sharing them in the thread), the same bytes the store gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo import load_example_schema
from bot.export import Format, export_files, gather
from bot.states import PlanState
from tests.conftest import EXAMPLES
from tests.slack.conftest import CHANNEL, RunningBot, start_bot, write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.test_approvals_flow import approve, planned
from tests.slack.test_runs import FILE, wait_state


@pytest.fixture
def watched_bot(
    tmp_path: Path, fake_slack: FakeSlack, migrations: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningBot]:
    """The bot on a real target, its monitor window six seconds long, sampled every half second."""
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("RUN_TARGET", target_dsn)
    policy = {"monitor": {"window_minutes": 0.1, "interval_seconds": 0.5}}
    config = write_config(
        tmp_path,
        migrations,
        settings={"policy": policy},
        dsn_env="RUN_TARGET",
        backup_dir=str(tmp_path / "backups"),
        procedure="zero_downtime",
    )
    yield from start_bot(tmp_path, fake_slack, config, migrations)


def test_the_timeline_is_uploaded_to_the_plan_s_thread_through_the_outbox(watched_bot: RunningBot) -> None:
    bot = watched_bot
    plan_id = planned(bot, FILE)
    for user in ["U0PO", "U0TL", "U0QA1"]:
        approve(bot, plan_id, user)
    bot.command(f"run {plan_id} all", user="U0TL", response="run")
    wait_state(bot, plan_id, PlanState.COMPLETED, timeout=90)  # the window closed all clear

    bot.command(f"timeline {plan_id} pdf", user="U0ONCALL", response="pdf")
    assert "format: one of md, json, csv, png" in bot.fake.wait_for_response("pdf")[0]["text"]
    assert bot.fake.calls_to("files.getUploadURLExternal") == []

    bot.command(f"timeline {plan_id}", user="U0ONCALL", response="md")
    assert "is on its way to the plan's thread" in bot.fake.wait_for_response("md")[0]["text"]
    report, chart = bot.fake.wait_for_files(2)
    bot.command(f"timeline #{plan_id} json", user="U0ONCALL", response="json")
    document = bot.fake.wait_for_files(3)[-1]

    plan = bot.plan(plan_id)
    with bot.services.db.session() as session:
        story = gather(session, plan_id, bot.services.config)
    expected = export_files(story, Format.MD) + export_files(story, Format.JSON)
    assert [(f.filename, f.content) for f in (report, chart, document)] == [
        (f.name, f.content) for f in expected
    ]
    for shared in (report, chart, document):
        assert (shared.channel_id, shared.thread_ts) == (CHANNEL, plan.message_ts)
        assert shared.initial_comment and "asked for by <@U0ONCALL>" in shared.initial_comment
    assert report.content.decode().count(f"](plan-{plan_id}-timeline.png)") == 1
    assert chart.content.startswith(b"\x89PNG")
    assert json.loads(document.content)["summary"]["outcome"] == "completed"
    asked = bot.fake.calls_to("files.getUploadURLExternal")
    assert [(c.args["filename"], int(c.args["length"])) for c in asked] == [
        (f.name, len(f.content)) for f in expected
    ]
    assert len(bot.fake.calls_to("files.completeUploadExternal")) == 2  # the report and its chart together
