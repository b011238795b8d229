"""The fault tests' tools, checked on their own: the fake's bad days and the serve process harness.

A fault test that fails should mean the bot is wrong, never that the fake did not fail the way it was
told or that the harness did not really kill the bot.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from tests.slack.conftest import SECRET
from tests.slack.fake_api import FakeSlack
from tests.slack.process import DELIVERY, ServeProcess, serve_config, serve_process
from tests.slack.signing import post, signed_headers, slash_command_body

MESSAGE = {"channel": "C0MIGRATE1", "text": "hello"}


def call(fake: FakeSlack, method: str, **args: str) -> tuple[int, dict[str, str], str]:
    """One Web API call as a client makes it; HTTP errors are returned with their headers."""
    request = urllib.request.Request(
        fake.api_url + method,
        data=urlencode(args).encode(),
        headers={"Authorization": f"Bearer {fake.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_every_answer_is_recorded_and_only_accepted_calls_are_delivered(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", "channel_not_found")
    assert json.loads(call(fake_slack, "chat.postMessage", **MESSAGE)[2])["error"] == "channel_not_found"
    status, _, body = call(fake_slack, "chat.postMessage", **MESSAGE)
    assert status == 200 and json.loads(body)["ok"] is True
    refused, accepted = fake_slack.calls_to("chat.postMessage")
    assert (refused.status, refused.ok, accepted.status, accepted.ok) == (200, False, 200, True)
    assert accepted.answer is not None and accepted.answer["ts"] == json.loads(body)["ts"]
    assert fake_slack.delivered("chat.postMessage") == [accepted]


def test_an_outage_answers_429_with_retry_after_for_its_methods_only_then_ends(fake_slack: FakeSlack) -> None:
    fake_slack.outage(["chat.postMessage", "chat.update"], 0.5, "429")
    status, headers, body = call(fake_slack, "chat.postMessage", **MESSAGE)
    assert (status, headers["Retry-After"], json.loads(body)["error"]) == (429, "1", "ratelimited")
    assert call(fake_slack, "chat.update", ts="1.2", **MESSAGE)[0] == 429
    assert call(fake_slack, "chat.postEphemeral", user="U1", **MESSAGE)[0] == 200
    time.sleep(0.6)
    assert call(fake_slack, "chat.postMessage", **MESSAGE)[0] == 200
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(fake_slack.delivered("chat.postMessage")) == 1 and fake_slack.delivered("chat.update") == []


@pytest.mark.parametrize("kind", ["500", "503"])
def test_a_5xx_outage_answers_an_html_page(fake_slack: FakeSlack, kind: str) -> None:
    fake_slack.outage("chat.postMessage", 0.5, kind)
    status, headers, body = call(fake_slack, "chat.postMessage", **MESSAGE)
    assert status == int(kind) and headers["Content-Type"].startswith("text/html")
    assert body.startswith("<html>") and "Retry-After" not in headers
    held = fake_slack.last("chat.postMessage")
    assert (held.status, held.ok, held.delivered) == (int(kind), None, False)


def test_outages_queue_back_to_back(fake_slack: FakeSlack) -> None:
    fake_slack.outage("chat.update", 0.4, "429")
    fake_slack.outage("chat.update", 0.4, "503", after=0.4)
    statuses = []
    for _ in range(5):
        statuses.append(call(fake_slack, "chat.update", ts="1.2", **MESSAGE)[0])
        time.sleep(0.25)
    assert statuses == [429, 429, 503, 503, 200]


def test_fail_times_fails_the_next_n_calls_of_one_method(fake_slack: FakeSlack) -> None:
    fake_slack.fail_times("chat.postMessage", 2, "503")
    assert call(fake_slack, "chat.update", ts="1.2", **MESSAGE)[0] == 200
    assert [call(fake_slack, "chat.postMessage", **MESSAGE)[0] for _ in range(3)] == [503, 503, 200]
    with pytest.raises(ValueError, match="fault kind"):
        fake_slack.fail_times("chat.postMessage", 1, "404")


def test_a_stalled_call_is_held_then_hung_up_on_unanswered(fake_slack: FakeSlack) -> None:
    fake_slack.stall("chat.postMessage")
    outcome: list[object] = []
    client = threading.Thread(target=lambda: outcome.append(_attempt(fake_slack)))
    client.start()
    held = fake_slack.wait_for_stalled("chat.postMessage")[0]
    assert call(fake_slack, "chat.update", ts="1.2", **MESSAGE)[0] == 200  # only that method is held
    time.sleep(0.3)
    assert client.is_alive() and held.status is None and fake_slack.delivered("chat.postMessage") == []
    fake_slack.release()
    client.join(5)
    assert isinstance(outcome[0], OSError)  # the connection closed without an HTTP answer
    assert held.status is None and fake_slack.delivered("chat.postMessage") == []
    assert call(fake_slack, "chat.postMessage", **MESSAGE)[0] == 200  # released: answered again


def _attempt(fake: FakeSlack) -> object:
    try:
        return call(fake, "chat.postMessage", **MESSAGE)
    except OSError as err:  # http.client.RemoteDisconnected, ConnectionResetError
        return err


def test_waiting_for_deliveries_ignores_refusals(fake_slack: FakeSlack) -> None:
    fake_slack.fail_times("chat.postMessage", 1, "429")
    call(fake_slack, "chat.postMessage", **MESSAGE)
    assert len(fake_slack.wait_for("chat.postMessage", timeout=1)) == 1  # called, as before
    with pytest.raises(AssertionError, match=r"delivered call\(s\) of chat.postMessage(.|\n)*429 ok=False"):
        fake_slack.wait_for_delivered("chat.postMessage", timeout=0.3)
    threading.Timer(0.2, call, args=(fake_slack, "chat.postMessage"), kwargs=MESSAGE).start()
    assert len(fake_slack.wait_for_delivered("chat.postMessage", timeout=5)) == 1


# --- the serve process harness ------------------------------------------------------------------


@pytest.fixture
def deployed(tmp_path: Path, fake_slack: FakeSlack, migrations: Path) -> Iterator[ServeProcess]:
    """Today's config schema (no ``delivery`` key), so the harness is checked against today's bot."""
    with serve_process(tmp_path, fake_slack, serve_config(tmp_path, migrations, delivery=None)) as bot:
        yield bot


def test_serve_runs_as_deployed_is_killed_and_restarts_on_the_same_store(deployed: ServeProcess) -> None:
    deployed.start()
    status, body = deployed.command("help")
    assert status == 200 and "/migrate plan <file> [environment]" in body
    unsigned = slash_command_body("help", user_id="U1", channel_id="C1", response_url="http://x/")
    assert post(deployed.url, unsigned, signed_headers(unsigned, "not-" + SECRET))[0] == 401
    deployed.command("plan 066_index_without_concurrently.sql production")
    plan_post = deployed.fake.wait_for_delivered("chat.postMessage", 4, timeout=20)[0]
    assert plan_post.answer is not None
    plan = deployed.store.plan(1)
    assert plan is not None and plan["message_ts"] == plan_post.answer["ts"]

    first_url = deployed.url
    assert deployed.kill() == -signal.SIGKILL and not deployed.running
    assert not deployed.healthy()
    deployed.start()
    assert deployed.url != first_url and deployed.store.plan(1) == plan
    deployed.command("status 1", response="status")
    assert (
        "066_index_without_concurrently.sql"
        in deployed.fake.wait_for_response("status", timeout=10)[0]["text"]
    )
    assert deployed.stop() == 0
    assert [p.name for p in deployed.logs] == ["serve-1.log", "serve-2.log"]
    assert "listening for Slack on http://127.0.0.1" in deployed.log()


def test_sigkill_takes_the_request_in_flight_with_it(deployed: ServeProcess) -> None:
    deployed.fake.stall("chat.postMessage")
    deployed.start().command("plan 061_drop_legacy_field.sql production")
    deployed.fake.wait_for_stalled("chat.postMessage", timeout=20)
    assert deployed.store.plan(1) is not None
    assert deployed.kill() == -signal.SIGKILL
    deployed.fake.release()
    time.sleep(0.3)
    assert deployed.fake.delivered("chat.postMessage") == []


def test_a_bot_that_cannot_start_fails_with_its_log(tmp_path: Path, fake_slack: FakeSlack) -> None:
    config = serve_config(tmp_path, tmp_path / "no-such-dir", delivery=None)
    with serve_process(tmp_path, fake_slack, config) as bot:
        with pytest.raises(AssertionError, match=r"serve exited with 2 (.|\n)*no-such-dir"):
            bot.start()
        assert not bot.running


def test_the_fault_tests_config_asks_for_short_backoff(tmp_path: Path, migrations: Path) -> None:
    data = yaml.safe_load(serve_config(tmp_path, migrations).read_text())
    assert data["delivery"] == DELIVERY == {"retry_max_seconds": 2}
    assert data["default_environment"] == "production" and "U0TL" in data["roles"]["technical_lead"]["users"]
    assert Path(data["environments"]["production"]["migrations_dir"]) == migrations
