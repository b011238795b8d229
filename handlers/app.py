"""The Bolt app: build it, register listeners by surface, nothing else."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.app import Services
from handlers import commands
from handlers.slack_notifier import SlackNotifier, make_client


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
    notifier = SlackNotifier(client)
    commands.register(app, services, notifier)
    return app
