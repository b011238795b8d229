"""A rehearsal through ``migrate-bot serve`` as deployed (its own process, worker processes, a real
PostgreSQL target), while Slack rate-limits and fails some calls: the High plan is approved once its
rehearsal passes, and every line the rehearsal owes reaches Slack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo import load_example_schema
from handlers.ids import PlanAction
from tests.conftest import EXAMPLES
from tests.slack.conftest import write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.process import DELIVERY, ServeProcess, poll, serve_process

FILE = "090_drop_legacy_field.sql"
SIGNERS = ["U0TL", "U0PO", "U0CTO", "U0ARCH", "U0SEC"]


@pytest.fixture
def serve(
    tmp_path: Path,
    fake_slack: FakeSlack,
    migrations: Path,
    target_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServeProcess]:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("REHEARSAL_TARGET", target_dsn)  # serve inherits it, as from its deployment
    (migrations / FILE).write_text("ALTER TABLE nchat.nchat_users DROP COLUMN legacy_field;\n")
    (migrations / FILE.replace(".sql", ".rollback.sql")).write_text(
        "ALTER TABLE nchat.nchat_users ADD COLUMN legacy_field text;\n"
    )
    config = write_config(tmp_path, migrations, dsn_env="REHEARSAL_TARGET", settings={"delivery": DELIVERY})
    with serve_process(tmp_path, fake_slack, config) as bot:
        yield bot.start()


def posted(fake: FakeSlack, text: str) -> bool:
    return any(text in (call.args.get("text") or "") for call in fake.delivered("chat.postMessage"))


def test_a_rehearsal_asked_in_slack_approves_the_plan_through_rate_limits(serve: ServeProcess) -> None:
    fake = serve.fake
    serve.command(f"plan {FILE} production")
    plan_id = poll(
        lambda: serve.store.plan_id(FILE) if (serve.store.plan(1) or {}).get("message_ts") else None,
        30,
        "the plan posted",
    )
    for user in SIGNERS:
        assert serve.click(PlanAction.APPROVE, plan_id, user=user)[0] == 200
    poll(lambda: len(serve.store.approvals(plan_id)) == len(SIGNERS), 30, "five sign-offs stored")
    assert serve.store.plan(plan_id)["state"] == "awaiting_approval"  # type: ignore[index]

    fake.rate_limit_next("chat.postMessage", retry_after=1)  # the rehearsal's first line: 429
    fake.fail_next("chat.update", "internal_error")
    status, _ = serve.click(PlanAction.REHEARSE, plan_id, user="U0TL", response="rehearse")
    assert status == 200
    assert "Rehearsal #1" in fake.wait_for_response("rehearse", timeout=30)[0]["text"]
    poll(lambda: serve.store.plan(plan_id)["state"] == "approved", 60, "the plan approved")  # type: ignore[index]
    fake.wait_until(lambda: posted(fake, "*Rehearsal #1 passed*"), 30, "the report delivered")
    fake.wait_until(lambda: posted(fake, "rehearsal passed"), 30, "the approval announced")
    poll(
        lambda: all(row["state"] == "sent" for row in serve.store.outbox(plan_id)),
        30,
        "everything owed delivered",
    )
    assert serve.stop() == 0
