"""The floor for ack latency: a Bolt app with default settings whose listeners only ack, on waitress.

``bench/ack_bench.py`` runs it beside the bot, with the bot's waitress thread count, so whatever the bot
adds on top of Bolt and waitress shows as a ratio. Environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,
SLACK_API_URL (auth.test is called at start, as the bot does), HOST, PORT, THREADS.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def build_app(token: str, signing_secret: str, api_url: str) -> App:
    # client= only to reach the fake Web API; everything else is Bolt's default
    app = App(client=WebClient(token=token, base_url=api_url), signing_secret=signing_secret)

    @app.command("/migrate")
    def command(ack: Ack) -> None:
        ack(text="ok")

    @app.action("plan-approve")
    def approve(ack: Ack) -> None:
        ack()

    return app


def wsgi(app: App) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return slack(environ, start_response)

    return application


def main() -> None:
    env = os.environ
    app = build_app(env["SLACK_BOT_TOKEN"], env["SLACK_SIGNING_SECRET"], env["SLACK_API_URL"])
    server = waitress.create_server(
        wsgi(app), host=env.get("HOST", "127.0.0.1"), port=int(env["PORT"]), threads=int(env["THREADS"])
    )
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    with contextlib.suppress(KeyboardInterrupt, OSError):  # close() pulls the socket from under run()
        server.run()


if __name__ == "__main__":
    main()
