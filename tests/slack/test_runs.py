"""Running a plan from Slack, through signed clicks and commands: the run's buttons, progress in the
thread, a freeze, and a rollback, against a real PostgreSQL target."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from bot.demo import load_example_schema
from bot.execution import ledger
from bot.states import PlanState
from handlers.ids import PlanAction
from storage.models import IncidentRecord
from tests.conftest import EXAMPLES
from tests.execution.test_runner import run_all
from tests.slack.conftest import AUTHOR, RunningBot, start_bot, write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.test_approvals_flow import approve, planned

FILE = "054_add_message_bookmarks.sql"


@pytest.fixture
def live_bot(
    tmp_path: Path, fake_slack: FakeSlack, migrations: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningBot]:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("RUN_TARGET", target_dsn)
    config = write_config(
        tmp_path,
        migrations,
        dsn_env="RUN_TARGET",
        backup_dir=str(tmp_path / "backups"),
        procedure="zero_downtime",
    )
    yield from start_bot(tmp_path, fake_slack, config, migrations)


def wait_state(bot: RunningBot, plan_id: int, state: PlanState, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while bot.plan(plan_id).state != state and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bot.plan(plan_id).state == state


def texts(bot: RunningBot, method: str) -> list[str]:
    return [c.args.get("text", "") for c in bot.fake.calls_to(method)]


def test_a_plan_runs_from_its_buttons_and_rolls_back_from_a_command(
    live_bot: RunningBot, target_dsn: str
) -> None:
    bot = live_bot
    plan_id = planned(bot, FILE)
    for user in ["U0PO", "U0TL", "U0QA1"]:  # production Low: peer review, Technical Lead, QA
        approve(bot, plan_id, user)
    assert bot.plan(plan_id).state == PlanState.APPROVED
    blocks = json.dumps(bot.fake.last("chat.update").args["blocks"])
    assert (
        PlanAction.RUN_NEXT in blocks
        and PlanAction.ROLLBACK in blocks
        and "Procedure: zero-downtime" in blocks
    )

    bot.click(PlanAction.RUN_ALL, plan_id, user="U0QA1", response="stranger")  # QA may not run it
    assert "only Technical Lead or On Call may run" in bot.fake.wait_for_response("stranger")[0]["text"]

    bot.click(PlanAction.RUN_ALL, plan_id, user="U0TL", response="run")
    assert "queued" in bot.fake.wait_for_response("run")[0]["text"]
    wait_state(bot, plan_id, PlanState.MONITORING)  # the hour after apply is watched
    assert ledger.applied(target_dsn, file_name=FILE) is not None
    bot.fake.wait_until(
        lambda: any(
            "☑ Full database backup completed" in json.dumps(c.args.get("blocks") or [], ensure_ascii=False)
            for c in bot.fake.calls_to("chat.update")
        ),
        10,
        "the plan's checklist ticked by the backup's evidence",
    )
    posted = bot.fake.wait_until(
        lambda: [t for t in texts(bot, "chat.postMessage") if "its monitor window watches on" in t],
        10,
        "the author told the run is over",
    )
    assert f"<@{AUTHOR}>" in posted[0]
    posted = texts(bot, "chat.postMessage")
    assert any("*Backup*" in t for t in posted)
    assert any("*Monitor*" in t and "of 60 min" in t for t in posted)  # the window's live line
    assert any("done in" in t for t in texts(bot, "chat.update"))  # the step lines were redrawn

    bot.command("freeze production big sale today", user="U0TL", response="freeze")
    assert "is frozen" in bot.fake.wait_for_response("freeze")[0]["text"]
    bot.fake.wait_until(  # announced in the channel too, for those who did not type it
        lambda: any("production is frozen" in t for t in texts(bot, "chat.postMessage")), 10, "the freeze"
    )
    bot.command(f"rollback {plan_id} bookmarks break the app", user="U0TL", response="rollback")
    assert "queued" in bot.fake.wait_for_response("rollback")[0]["text"]  # a freeze stops runs, not rollbacks
    wait_state(bot, plan_id, PlanState.ROLLED_BACK)
    bot.fake.wait_until(
        lambda: any("*Monitor*" in t and "rolled back" in t for t in texts(bot, "chat.update")),
        10,
        "the window's line stopped by the rollback",
    )
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute("SELECT to_regclass('nchat.nchat_message_bookmarks')").fetchone() == (None,)
    assert ledger.applied(target_dsn, file_name=FILE) is None


DROP_FILE = "090_drop_legacy_field.sql"


def test_a_production_high_plan_is_approved_once_its_rehearsal_from_slack_passes(
    live_bot: RunningBot, target_dsn: str
) -> None:
    bot = live_bot
    (bot.migrations / DROP_FILE).write_text("ALTER TABLE nchat.nchat_users DROP COLUMN legacy_field;\n")
    (bot.migrations / DROP_FILE.replace(".sql", ".rollback.sql")).write_text(
        "ALTER TABLE nchat.nchat_users ADD COLUMN legacy_field text;\n"
    )
    plan_id = planned(bot, DROP_FILE)
    assert PlanAction.REHEARSE in json.dumps(bot.fake.calls_to("chat.postMessage")[-4].args["blocks"])
    for user in ["U0TL", "U0PO", "U0CTO", "U0ARCH", "U0SEC"]:
        approve(bot, plan_id, user)
    assert bot.plan(plan_id).state == PlanState.AWAITING_APPROVAL
    assert any("approved once a rehearsal" in t for t in texts(bot, "chat.postMessage"))

    bot.command(f"rehearse {plan_id} lots", user="U0TL", response="bad-rows")
    assert "rows: a whole number" in bot.fake.wait_for_response("bad-rows")[0]["text"]
    bot.click(PlanAction.REHEARSE, plan_id, user="U0STRANGER", response="stranger")
    assert f"only the author of plan #{plan_id}" in bot.fake.wait_for_response("stranger")[0]["text"]
    bot.click(PlanAction.REHEARSE, plan_id, user="U0TL", response="rehearse")
    assert "Rehearsal #1" in bot.fake.wait_for_response("rehearse")[0]["text"]
    wait_state(bot, plan_id, PlanState.APPROVED)

    bot.fake.wait_until(
        lambda: any("*Rehearsal #1 passed*" in t for t in texts(bot, "chat.postMessage")), 10, "the report"
    )
    report = next(t for t in texts(bot, "chat.postMessage") if "*Rehearsal #1 passed*" in t)
    assert (
        "ACCESS EXCLUSIVE on nchat.nchat_users" in report and "Rollback script generated and tested" in report
    )
    line = bot.fake.wait_until(
        lambda: [t for t in texts(bot, "chat.update") if t.startswith("✅ *Rehearsal #1*")], 10, "its line"
    )
    assert "passed after" in line[-1]
    bot.fake.wait_until(
        lambda: any("is *approved*" in t and "rehearsal passed" in t for t in texts(bot, "chat.postMessage")),
        10,
        "the approval announced",
    )
    bot.fake.wait_until(
        lambda: any(
            "✅ Rehearsal report: rehearsal #1 passed"
            in json.dumps(c.args.get("blocks") or [], ensure_ascii=False)
            for c in bot.fake.calls_to("chat.update")
        ),
        10,
        "the plan's message showing the rehearsal",
    )
    with psycopg.connect(target_dsn) as conn:  # rehearsed on a copy: the target still has the column
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'legacy_field'"
        ).fetchone() == (1,)


def test_an_incident_opened_by_hand_pages_on_call_and_bad_input_changes_nothing(live_bot: RunningBot) -> None:
    bot = live_bot
    plan_id = planned(bot, FILE)
    bot.command(f"incident {plan_id} P2 checkout is broken", user="U0TL", response="early")
    assert "an incident is about a plan that ran" in bot.fake.wait_for_response("early")[0]["text"]
    for user in ["U0PO", "U0TL", "U0QA1"]:
        approve(bot, plan_id, user)
    assert run_all(bot.services, plan_id, operator="U0TL") is PlanState.MONITORING

    bot.command(f"incident {plan_id} P9 checkout is broken", user="U0TL", response="severity")
    assert "severity: one of P0, P1, P2, P3" in bot.fake.wait_for_response("severity")[0]["text"]
    bot.command(f"incident {plan_id} P2 checkout is broken", user="U0QA1", response="stranger")
    assert "may answer incidents" in bot.fake.wait_for_response("stranger")[0]["text"]
    with bot.services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(IncidentRecord)) == 0

    bot.command(f"incident {plan_id} p2 checkout is broken", user="U0TL", response="opened")
    reply = bot.fake.wait_for_response("opened")[0]
    assert (
        reply["response_type"] == "ephemeral"
        and f"Incident #1 (P2) is open on plan #{plan_id}" in reply["text"]
    )
    page = bot.fake.wait_until(
        lambda: [c for c in bot.fake.delivered("chat.postMessage") if c.args.get("channel") == "U0ONCALL"],
        10,
        "on-call's page",
    )[0]
    assert "checkout is broken" in page.args["text"] and "P2" in page.args["text"]
