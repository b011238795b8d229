"""Delivery to Slack survives the bot's death and Slack's bad days: every message owed is delivered once.

The contract (the outbox): each message the bot owes Slack is committed with the state change it
reports, and serve's deliverer sends it, honouring Retry-After and backing off on 5xx, until it is
delivered or has failed for good; a restart delivers what is pending; nothing is delivered twice.
The bot runs as deployed (``python -m bot.cli serve``, tests/slack/process.py) so it can be SIGKILLed
with a request in flight. Counts are of DELIVERED calls (HTTP 200, ``ok: true``): what people see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from handlers.ids import PlanAction
from tests.slack.conftest import CHANNEL
from tests.slack.fake_api import Call, FakeSlack
from tests.slack.process import BotStore, ServeProcess, poll, serve_config, serve_process

HIGH = "061_drop_legacy_field.sql"  # production High
MEDIUM = "066_index_without_concurrently.sql"  # production Medium
MESSAGING = ["chat.postMessage", "chat.update"]
# counted exactly: the channel's messages and redraws
COUNTED = ("chat.postMessage", "chat.update", "files.completeUploadExternal")
# never twice to the letter: posts and private notes (two redraws may rightly draw the same state)
UNIQUE = ("chat.postMessage", "chat.postEphemeral", "files.completeUploadExternal")
DELIVERY_TIMEOUT = 30.0  # Retry-After 1 s and backoff capped at 2 s (retry_max_seconds) fit many times
SETTLE = 2.0  # after the last expected delivery: anything delivered since is a double
DETAILS: dict[str, Callable[[str], bool]] = {
    "migration SQL": lambda text: text.startswith("*Migration SQL*"),
    "rollback SQL": lambda text: text.startswith("*Rollback SQL"),
    "checklist": lambda text: "Full database backup completed" in text,
}
ONE_EACH = dict.fromkeys(DETAILS, 1)


@pytest.fixture
def serve(tmp_path: Path, fake_slack: FakeSlack, migrations: Path) -> Iterator[ServeProcess]:
    """A started bot configured with ``delivery: {retry_max_seconds: 2}``; killed at teardown."""
    with serve_process(tmp_path, fake_slack, serve_config(tmp_path, migrations)) as bot:
        yield bot.start()


# --- reading what Slack accepted -------------------------------------------------------------------


def blocks_text(call: Call) -> str:
    """A message's blocks as one searchable string (emoji kept, as people read them)."""
    blocks = call.args.get("blocks") or []
    return json.dumps(json.loads(blocks) if isinstance(blocks, str) else blocks, ensure_ascii=False)


def plan_posts(fake: FakeSlack) -> list[Call]:
    """Delivered top-level messages: the plans themselves."""
    return [c for c in fake.delivered("chat.postMessage") if not c.args.get("thread_ts")]


def thread(fake: FakeSlack, ts: str) -> list[str]:
    """Texts delivered in the thread of the message ``ts``, in order."""
    return [
        str(c.args.get("text")) for c in fake.delivered("chat.postMessage") if c.args.get("thread_ts") == ts
    ]


def details(texts: list[str]) -> dict[str, int]:
    """How many of each of the plan's thread posts (SQL, rollback, checklist) are among ``texts``."""
    return {name: sum(1 for text in texts if is_it(text)) for name, is_it in DETAILS.items()}


def redraws(fake: FakeSlack, ts: str) -> list[Call]:
    """Delivered redraws of the message ``ts``, in order: the last is what people see."""
    return [c for c in fake.delivered("chat.update") if c.args.get("ts") == ts]


def settled(fake: FakeSlack) -> dict[str, int]:
    """Delivered messages and redraws per method, once a double has had ``SETTLE`` seconds to show;
    no delivered post repeats another to the letter."""
    time.sleep(SETTLE)
    seen = [json.dumps([c.method, c.args], sort_keys=True) for m in UNIQUE for c in fake.delivered(m)]
    doubles = sorted({call for call in seen if seen.count(call) > 1})
    assert not doubles, f"delivered twice: {doubles}"
    return {method: n for method in COUNTED if (n := len(fake.delivered(method)))}


# --- reading the bot's store -----------------------------------------------------------------------


def message_ts(store: BotStore, plan_id: int, timeout: float = DELIVERY_TIMEOUT) -> str:
    """The plan's message ts, which the bot stores once Slack has accepted the post."""
    return poll(lambda: (store.plan(plan_id) or {}).get("message_ts"), timeout, f"plan #{plan_id} posted")


def assert_all_sent(store: BotStore, plan_id: int) -> None:
    rows = store.outbox(plan_id)
    states = [(r["id"], r["kind"], r["state"], r["attempts"], r["last_error"]) for r in rows]
    assert rows and all(r["state"] == "sent" for r in rows), f"outbox of plan #{plan_id}: {states}"


def posted_plan(serve: ServeProcess, file: str) -> tuple[int, str]:
    """Plan ``file`` with Slack well, and wait until the plan and its three thread posts are delivered."""
    posts = len(serve.fake.delivered("chat.postMessage"))
    assert serve.command(f"plan {file} production")[0] == 200
    plan_id = poll(lambda: serve.store.plan_id(file), 20, f"a plan of {file}")
    serve.fake.wait_for_delivered("chat.postMessage", posts + 4, timeout=20)
    return plan_id, message_ts(serve.store, plan_id)


def restart_after_sigkill(serve: ServeProcess, method: str) -> None:
    """SIGKILL the bot while Slack holds its ``method`` request, hang that request up unanswered (Slack
    never processed it), and start the bot again on the same store and config."""
    serve.fake.wait_for_stalled(method, timeout=20)
    serve.kill()
    serve.fake.release()
    serve.start()


# --- the contract ---------------------------------------------------------------------------------


def test_a_plan_stored_but_not_posted_when_the_bot_dies_is_posted_once_after_restart(
    serve: ServeProcess,
) -> None:
    fake = serve.fake
    fake.stall("chat.postMessage")
    assert serve.command(f"plan {HIGH} production")[0] == 200
    poll(lambda: serve.store.plan(1), 20, "plan #1 committed")
    restart_after_sigkill(serve, "chat.postMessage")

    ts = message_ts(serve.store, 1, timeout=20)
    fake.wait_until(lambda: len(thread(fake, ts)) >= 3, 20, "plan #1's three thread posts")
    assert settled(fake) == {"chat.postMessage": 4}
    [plan] = plan_posts(fake)
    assert plan.args["channel"] == CHANNEL and "Plan #1" in blocks_text(plan)
    assert plan.answer is not None and plan.answer["ts"] == ts  # the thread hangs off the delivered post
    assert details(thread(fake, ts)) == ONE_EACH
    assert_all_sent(serve.store, 1)


def test_an_approval_stored_but_not_announced_when_the_bot_dies_is_announced_once_after_restart(
    serve: ServeProcess,
) -> None:
    fake = serve.fake
    plan_id, ts = posted_plan(serve, HIGH)
    fake.stall("chat.update")
    assert serve.click(PlanAction.APPROVE, plan_id, user="U0TL")[0] == 200
    poll(lambda: serve.store.approvals(plan_id), 20, "the approval committed")
    restart_after_sigkill(serve, "chat.update")

    fake.wait_until(
        lambda: redraws(fake, ts) and any("approved as Technical Lead" in t for t in thread(fake, ts)),
        20,
        "the redraw and the approval line",
    )
    assert settled(fake) == {"chat.postMessage": 5, "chat.update": 1}
    [redraw] = redraws(fake, ts)
    assert "✅ Technical Lead" in blocks_text(redraw)
    assert len([t for t in thread(fake, ts) if "approved as Technical Lead" in t]) == 1
    assert_all_sent(serve.store, plan_id)


def bad_weather(fake: FakeSlack, seconds: float = 4.0) -> None:
    """Slack rate limits messages for ``seconds``, then answers 503 for as long."""
    fake.outage(MESSAGING, seconds, "429")
    fake.outage(MESSAGING, seconds, "503", after=seconds)


def test_slack_answering_429_then_503_for_a_while_loses_nothing_and_doubles_nothing(
    serve: ServeProcess,
) -> None:
    fake, store = serve.fake, serve.store
    bad_weather(fake)
    answers = [serve.command(f"plan {HIGH} production")]
    first = poll(lambda: store.plan_id(HIGH), 20, f"a plan of {HIGH}")
    answers.append(serve.command(f"plan {MEDIUM} production"))
    second = poll(lambda: store.plan_id(MEDIUM), 20, f"a plan of {MEDIUM}")
    ts = message_ts(store, first)
    bad_weather(fake)  # nobody clicks a message before it is posted: the approvals get their own storm
    answers.append(serve.click(PlanAction.APPROVE, first, user="U0TL"))
    poll(lambda: len(store.approvals(first)) == 1, 20, "the Technical Lead's approval committed")
    answers.append(serve.click(PlanAction.APPROVE, first, user="U0PO"))
    poll(lambda: len(store.approvals(first)) == 2, 20, "the Product Owner's approval committed")

    def signed_by_both() -> bool:
        last = redraws(fake, ts)[-1:]
        return bool(last) and all(
            s in blocks_text(last[0]) for s in ("✅ Technical Lead", "✅ Product Owner")
        )

    second_ts = message_ts(store, second)
    fake.wait_until(
        lambda: len(thread(fake, ts)) >= 5 and len(thread(fake, second_ts)) >= 3 and signed_by_both(),
        DELIVERY_TIMEOUT,
        "both plans' threads and plan #1 redrawn with both sign-offs",
    )
    seen = settled(fake)
    assert [status for status, _ in answers] == [200] * 4
    assert {429, 503} <= {c.status for c in fake.calls_to("chat.postMessage")}  # the storm was real
    posts = {c.answer["ts"]: blocks_text(c) for c in plan_posts(fake) if c.answer}
    assert len(plan_posts(fake)) == 2 and set(posts) == {ts, second_ts}
    assert f"Plan #{first}" in posts[ts] and f"Plan #{second}" in posts[second_ts]
    first_thread, second_thread = thread(fake, ts), thread(fake, second_ts)
    assert len(set(first_thread)) == len(first_thread) and len(set(second_thread)) == len(second_thread)
    assert details(first_thread) == ONE_EACH and details(second_thread) == ONE_EACH
    news = [t for t in first_thread if " approved as " in t]
    assert len(news) == 2 and "Technical Lead" in news[0] and "Product Owner" in news[1]
    assert seen["chat.postMessage"] == 2 + 2 * 3 + 2
    # a redraw may be coalesced with a later one (the last state is what counts), never repeated
    assert [c.args["ts"] for c in fake.delivered("chat.update")] in ([ts], [ts, ts])
    assert signed_by_both()
    assert_all_sent(store, first)
    assert_all_sent(store, second)


def test_a_plan_slack_refuses_for_good_says_so_and_is_reposted_once(serve: ServeProcess) -> None:
    fake, store = serve.fake, serve.store
    fake.fail_next("chat.postMessage", "channel_not_found")
    assert serve.command(f"plan {HIGH} production", response="plan")[0] == 200
    failed = poll(
        lambda: [r for r in store.outbox(1) if r["state"] == "failed"], 20, "plan #1's delivery failed"
    )
    assert any("channel_not_found" in str(row["last_error"]) for row in failed), failed
    time.sleep(SETTLE)
    assert len(fake.calls_to("chat.postMessage")) == 1  # a refusal for good is not retried
    serve.command("status 1", response="status")
    reply = fake.wait_for_response("status", timeout=10)[0]
    assert reply["response_type"] == "ephemeral"
    assert "not posted: channel_not_found" in reply["text"] and "/migrate repost 1" in reply["text"]

    assert serve.command("repost 1", response="repost")[0] == 200
    ts = message_ts(store, 1, timeout=20)
    fake.wait_until(lambda: len(thread(fake, ts)) >= 3, 20, "plan #1's three thread posts")
    assert settled(fake) == {"chat.postMessage": 4}
    [plan] = plan_posts(fake)
    assert "Plan #1" in blocks_text(plan) and plan.answer is not None and plan.answer["ts"] == ts
    assert details(thread(fake, ts)) == ONE_EACH


def test_a_click_while_redraws_are_rate_limited_is_told_the_truth_and_redrawn_once(
    serve: ServeProcess,
) -> None:
    fake = serve.fake
    plan_id, ts = posted_plan(serve, HIGH)
    fake.outage("chat.update", 6, "429")
    clears = time.monotonic() + 6
    assert serve.click(PlanAction.APPROVE, plan_id, user="U0TL", response="click")[0] == 200
    reply = fake.wait_for_response("click", timeout=5)[0]
    assert time.monotonic() < clears, "the clicker heard nothing until Slack recovered"
    assert reply["response_type"] == "ephemeral"
    assert "approved" in reply["text"] and "when Slack accepts it" in reply["text"]

    fake.wait_until(
        lambda: redraws(fake, ts) and any("approved as Technical Lead" in t for t in thread(fake, ts)),
        DELIVERY_TIMEOUT,
        "the redraw after the outage and the approval line",
    )
    assert settled(fake) == {"chat.postMessage": 5, "chat.update": 1}
    [redraw] = redraws(fake, ts)
    assert redraw.at >= clears - 0.1 and "✅ Technical Lead" in blocks_text(redraw)
    assert len(fake.wait_for_response("click")) == 1  # no later word contradicts it
    assert_all_sent(serve.store, plan_id)
