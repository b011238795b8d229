"""The Bolt app: build it, register listeners by surface, nothing else."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.app import Services
from bot.approvals import Approvals
from bot.reviewing import Reviews
from bot.roles import RoleDirectory
from handlers import commands, reviews
from handlers.slack_notifier import SlackNotifier, make_client


def slack_roles(services: Services, client: WebClient) -> RoleDirectory:
    """The config's roles, with user groups read from Slack (``usergroups.users.list``)."""

    def group_members(group: str) -> list[str]:
        return list(client.usergroups_users_list(usergroup=group)["users"])

    return RoleDirectory(services.config.roles, group_members)


def build_reviews(services: Services, client: WebClient) -> Reviews:
    approvals = Approvals(services.db, services.config, slack_roles(services, client))
    return Reviews(approvals, SlackNotifier(client), services.config)


def build_app(services: Services, client: WebClient | None = None) -> App:
    """A Bolt app wired to the services; ``client`` defaults to one built from the settings."""
    settings = services.settings
    if client is None:
        assert settings.slack_bot_token is not None
        client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret
        else None,
        # Socket Mode requests are not signed; HTTP requests always are.
        request_verification_enabled=settings.slack_app_token is None,
    )
    review_service = build_reviews(services, client)
    commands.register(app, services, review_service)
    reviews.register(app, review_service)
    return app
