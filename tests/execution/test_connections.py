"""Waiting for the application's connections to the target to close."""

from __future__ import annotations

import threading

import psycopg
import pytest

from bot.execution.connections import wait_for_connections
from bot.execution.errors import StepCancelled, StepTimeout

BOT = "migrate-bot plan #7"


def test_nothing_to_wait_for_without_other_connections(target_dsn: str) -> None:
    with psycopg.connect(target_dsn, application_name=BOT):  # the bot's own sessions do not count
        assert wait_for_connections(target_dsn, exclude_application=BOT, timeout=5, poll=0.1) == 0


def test_waits_until_the_application_disconnects(target_dsn: str) -> None:
    heard: list[str] = []
    app = psycopg.connect(target_dsn, application_name="chat-api")
    threading.Timer(0.5, app.close).start()
    assert (
        wait_for_connections(target_dsn, exclude_application=BOT, timeout=10, poll=0.1, progress=heard.append)
        == 1
    )
    assert heard == ["waiting for 1 connection(s) to the target to close"]
    assert app.closed


def test_names_who_is_still_connected_when_time_runs_out(target_dsn: str) -> None:
    with psycopg.connect(target_dsn, application_name="chat-api") as app:
        app.execute("BEGIN")
        with pytest.raises(StepTimeout) as timed_out:
            wait_for_connections(target_dsn, exclude_application=BOT, timeout=0.3, poll=0.1)
    message = timed_out.value.message
    assert message.startswith("1 connection(s) still open after 0.3 s: ")
    assert "(chat-api)" in message and "idle in transaction since 20" in message
    assert ("local socket" in message) or ("127.0.0.1" in message) or ("::1" in message)


def test_cancelling_stops_the_wait(target_dsn: str) -> None:
    with psycopg.connect(target_dsn, application_name="chat-api"), pytest.raises(StepCancelled):
        wait_for_connections(
            target_dsn, exclude_application=BOT, timeout=30, poll=0.1, cancelled=lambda: True
        )
