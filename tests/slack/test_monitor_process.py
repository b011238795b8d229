"""The monitor window through ``migrate-bot serve`` as deployed, killed mid-window: plan 054 runs on a real
PostgreSQL target from signed clicks, its error rate is read from a command whose answer the test sets,
and the policy's durations are compressed to seconds in config. A P2 breach pages on-call; the bot is
SIGKILLed before the Technical Lead is due and started again after: the window resumes, the missed
escalation fires exactly once, and the Technical Lead's acknowledgement from the page's direct message
stops the chain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo import load_example_schema
from handlers.ids import IncidentAction, PlanAction
from tests.conftest import EXAMPLES
from tests.monitor.plans import file_source
from tests.slack.conftest import write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.process import DELIVERY, ServeProcess, poll, serve_process

FILE = "054_add_message_bookmarks.sql"
SECOND = 1 / 60  # a policy minute, in minutes
TECH_LEAD_AFTER = 12  # seconds after the incident opens


@pytest.fixture
def error_rate(tmp_path: Path) -> Path:
    path = tmp_path / "error_rate"
    path.write_text("0.2\n")
    return path


@pytest.fixture
def serve(
    tmp_path: Path,
    fake_slack: FakeSlack,
    migrations: Path,
    target_dsn: str,
    error_rate: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServeProcess]:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("MONITOR_TARGET", target_dsn)
    policy = {
        "monitor": {
            "window_minutes": 10,
            "interval_seconds": 0.5,
            "rollback_triggers": {"error_rate_window_minutes": 2 * SECOND},
        },
        "escalation": {
            "chain": [
                {"role": "on_call", "after_minutes": 0},
                {"role": "technical_lead", "after_minutes": TECH_LEAD_AFTER * SECOND},
                {"role": "cto", "after_minutes": 30},
            ],
            "repeat_ping_minutes": 30,
        },
    }
    source = file_source(error_rate)
    config = write_config(
        tmp_path,
        migrations,
        dsn_env="MONITOR_TARGET",
        backup_dir=str(tmp_path / "backups"),
        procedure="zero_downtime",
        monitor={"sources": {"error_rate": source}},
        settings={"delivery": DELIVERY, "policy": policy},
    )
    with serve_process(tmp_path, fake_slack, config) as bot:
        yield bot.start()


def pages(serve: ServeProcess) -> list[tuple[str, str]]:
    return [(p["role"], p["why"]) for p in serve.store.rows("SELECT role, why FROM pages ORDER BY id")]


def samples_after(serve: ServeProcess, moment: str) -> int:
    return len(serve.store.rows("SELECT id FROM monitor_samples WHERE taken_at > :at", at=moment))


def test_a_bot_killed_mid_window_resumes_it_and_fires_the_missed_escalation_once(
    serve: ServeProcess, error_rate: Path
) -> None:
    fake = serve.fake
    serve.command(f"plan {FILE} production")
    plan_id = poll(lambda: (serve.store.plan(1) or {}).get("message_ts") and 1, 30, "the plan posted")
    # production Low: peer review, Technical Lead, QA; one at a time, since a Technical Lead clicking while
    # the peer review is open is asked which of the two he signs (a modal)
    for count, user in enumerate(["U0PO", "U0TL", "U0QA1"], start=1):
        assert serve.click(PlanAction.APPROVE, plan_id, user=user)[0] == 200
        poll(lambda n=count: len(serve.store.approvals(plan_id)) == n, 30, f"sign-off {count} stored")
    poll(lambda: serve.store.plan(plan_id)["state"] == "approved", 30, "the plan approved")  # type: ignore[index]
    assert serve.click(PlanAction.RUN_ALL, plan_id, user="U0TL")[0] == 200
    poll(lambda: serve.store.plan(plan_id)["state"] == "monitoring", 60, "the window open")  # type: ignore[index]
    time.sleep(3)  # past the early window: a breach now is an incident, not a rollback

    error_rate.write_text("7.5\n")  # P2: 5-10 %
    incident = poll(
        lambda: serve.store.rows("SELECT * FROM incidents WHERE severity = 'P2'"), 30, "a P2 incident"
    )[0]
    poll(lambda: ("on_call", "opened") in pages(serve), 10, "on-call paged")
    assert serve.kill() == -9
    killed_at = time.monotonic()
    assert ("technical_lead", "escalated") not in pages(serve), "killed too late to miss the escalation"
    time.sleep(max(0.0, TECH_LEAD_AFTER + 2 - (time.monotonic() - killed_at)))  # the Tech Lead falls due

    restarted_at = serve.store.rows("SELECT datetime('now') AS now")[0]["now"]
    fake.rate_limit_next("chat.postMessage", retry_after=1)  # Slack busy when the missed page goes out
    fake.rate_limit_next("chat.postMessage", retry_after=1)
    fake.fail_next("chat.update", "internal_error")
    serve.start()
    poll(lambda: ("technical_lead", "escalated") in pages(serve), 40, "the missed escalation")
    poll(lambda: samples_after(serve, restarted_at) >= 4, 20, "the window sampled again")
    time.sleep(2)  # a second firing would come within a tick or two
    assert pages(serve).count(("technical_lead", "escalated")) == 1, pages(serve)
    assert serve.store.plan(plan_id)["state"] == "monitoring"  # type: ignore[index]

    page = fake.wait_until(
        lambda: [
            c
            for c in fake.delivered("chat.postMessage")
            if c.args.get("channel") == "U0TL" and IncidentAction.ACKNOWLEDGE in str(c.args.get("blocks"))
        ],
        40,
        "the Technical Lead's direct message with its buttons",
    )[0]
    assert page.answer is not None
    tech_lead_pages = [
        c
        for c in fake.delivered("chat.postMessage")
        if c.args.get("channel") == "U0TL" and IncidentAction.ACKNOWLEDGE in str(c.args.get("blocks"))
    ]
    assert len(tech_lead_pages) == 1, "the page reached the Technical Lead once, through Slack's 429s"
    dm, ts = page.answer["channel"], page.answer["ts"]
    value = str(incident["id"])
    serve.press(IncidentAction.ACKNOWLEDGE, value, user="U0PO", channel=dm, ts=ts, response="stranger")
    assert "may answer incidents" in fake.wait_for_response("stranger", timeout=20)[0]["text"]
    serve.press(IncidentAction.ACKNOWLEDGE, value, user="U0TL", channel=dm, ts=ts, response="ack")
    assert "acknowledged" in fake.wait_for_response("ack", timeout=20)[0]["text"]
    stored = serve.store.rows("SELECT * FROM incidents WHERE id = :id", id=incident["id"])[0]
    assert (stored["state"], stored["acknowledged_by"]) == ("acknowledged", "U0TL")
    assert serve.stop() == 0
