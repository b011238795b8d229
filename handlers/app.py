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

from bot.app import Services
from bot.roles import GroupMembers
from handlers import commands, reviews
from handlers.errors import ack_error

ANYTHING = re.compile(".*")


class _OwnClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that the client we pass wins: it is meant to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_OwnClient())


def slack_group_members(client: WebClient) -> GroupMembers:
    """Members of a Slack user group (``usergroups.users.list``), for the role directory."""

    def group_members(group: str) -> list[str]:
        return list(client.usergroups_users_list(usergroup=group)["users"])

    return group_members


def _provide(services: Services) -> Callable[..., BoltResponse]:
    """Middleware that hands every listener the services, as ``context["services"]``."""

    def middleware(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["services"] = services
        return next()

    return middleware


def acknowledge(ack: Ack) -> None:
    """Requests no listener wants (an old message's button, a removed modal): 200, never Bolt's 404."""
    ack()


def build_app(services: Services, client: WebClient) -> App:
    """A Bolt app wired to the services, calling Slack through ``client``."""
    settings = services.settings
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret
        else None,
        # Socket Mode requests are not signed; HTTP requests always are.
        request_verification_enabled=settings.slack_app_token is None,
        process_before_response=True,
    )
    app.use(_provide(services))
    app.error(ack_error)
    commands.register(app)
    reviews.register(app)
    fallbacks: list[Any] = [app.action, app.view, app.command, app.shortcut, app.options]
    for surface in fallbacks:
        surface(ANYTHING)(acknowledge)
    return app
