"""The Bolt app: build it, register listeners by surface, nothing else.

``process_before_response`` makes Bolt run each listener on the request thread and answer Slack when
it returns: our listeners only parse and ack (the work goes to the bot's own pools), so the ack is
sent at once instead of after Bolt's polling of a shared executor that the work also uses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient

from bot.config import BotConfig, Settings
from handlers import commands, incidents, reviews, runs
from handlers.errors import ack_error
from handlers.worker import Pools

ANYTHING = re.compile(".*")


class _OwnClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that the client we pass wins: it is meant to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_OwnClient())


def _provide(config: BotConfig, pools: Pools) -> Callable[..., BoltResponse]:
    """Middleware that hands every listener the config and the pools (``context["config"]``, …)."""

    def middleware(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["config"], context["pools"] = config, pools
        return next()

    return middleware


def acknowledge(ack: Ack) -> None:
    """Requests no listener wants (an old message's button, a removed modal): 200, never Bolt's 404."""
    ack()


def build_app(settings: Settings, config: BotConfig, pools: Pools, client: WebClient) -> App:
    """A Bolt app that acknowledges and hands the work to ``pools``; Bolt calls Slack through ``client``."""
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret
        else None,
        # Socket Mode requests are not signed; HTTP requests always are.
        request_verification_enabled=settings.slack_app_token is None,
        process_before_response=True,
    )
    app.use(_provide(config, pools))
    app.error(ack_error)
    commands.register(app)
    reviews.register(app)
    runs.register(app)
    incidents.register(app)
    fallbacks: list[Any] = [app.action, app.view, app.command, app.shortcut, app.options]
    for surface in fallbacks:
        surface(ANYTHING)(acknowledge)
    return app
