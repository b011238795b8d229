"""What the bot reads from its process environment: secrets and endpoints; and how a bad configuration
is reported.

Apart from the config file's models (bot.config) so that commands which need no config file, like
``migrate-bot plan`` in a CI pipeline, start without loading pydantic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE_DIR = ".migrate-bot"


class Secret:
    """A token or password that shows as ``**********`` when printed, logged or put in a repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds one ``key: message`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Secrets and endpoints from the environment."""

    slack_bot_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_app_token: Secret | None = None
    slack_api_url: str | None = None
    database_url: str = f"sqlite:///{DEFAULT_STATE_DIR}/state.db"
    config_path: Path | None = None
    host: str = "0.0.0.0"
    port: int = 3000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = environ if environ is not None else os.environ

        def secret(name: str) -> Secret | None:
            return Secret(env[name]) if env.get(name) else None

        problems = []
        port = env.get("PORT", "3000")
        if not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(f"PORT: {port!r} is not a TCP port number")
        if problems:
            raise ConfigError(problems)
        return cls(
            slack_bot_token=secret("SLACK_BOT_TOKEN"),
            slack_signing_secret=secret("SLACK_SIGNING_SECRET"),
            slack_app_token=secret("SLACK_APP_TOKEN"),
            slack_api_url=env.get("SLACK_API_URL") or None,
            database_url=env.get("DATABASE_URL") or cls.database_url,
            config_path=Path(env["MIGRATE_BOT_CONFIG"]) if env.get("MIGRATE_BOT_CONFIG") else None,
            host=env.get("HOST", cls.host),
            port=int(port),
        )

    def slack_problems(self) -> list[str]:
        """What is missing to talk to Slack (serve needs these; plan and demo do not)."""
        problems = []
        if not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN: not set (the bot's xoxb- token)")
        elif not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN: expected a bot token starting with xoxb-")
        if not self.slack_app_token and not self.slack_signing_secret:
            problems.append("SLACK_SIGNING_SECRET: not set (needed for HTTP mode; or set SLACK_APP_TOKEN)")
        if self.slack_app_token and not self.slack_app_token.get_secret_value().startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN: expected an app-level token starting with xapp-")
        return problems
