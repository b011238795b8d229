"""An environment's ``monitor:`` section: where the window reads the application's error rate, latency and
health, and where it pages.

Like the rest of the file it holds no secret: the target's DSN comes from the environment's ``dsn_env`` and
the PagerDuty routing key from the variable ``pagerduty_routing_key_env`` names. A URL carrying a password
is refused, so it cannot sit in the file (nor be echoed by an error: URLs are shown redacted).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bot.redact import redact

KINDS = ("prometheus", "http", "sql", "command")
Seconds = Annotated[float, Field(gt=0, le=300)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _url(value: str) -> str:
    """An http(s) URL with a host and no password."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact(value)!r} is not an http:// or https:// URL with a host")
    if parts.password is not None:
        raise ValueError(
            f"{redact(value)!r} carries a password: credentials never go in the file "
            "(put the service behind a proxy that adds them, or give it a URL without them)"
        )
    return value


def _env_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _pattern(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as err:
        raise ValueError(f"{value!r} is not a regular expression ({err})") from None
    if compiled.groups > 1:
        raise ValueError(f"{value!r} has {compiled.groups} groups: give one around the number, or none")
    return value


Url = Annotated[str, AfterValidator(_url)]


class PrometheusConfig(_Model):
    """An instant query on Prometheus's HTTP API (``url`` is the server, e.g. http://prometheus:9090).

    ``up_query`` must answer 1 for every series it returns (e.g. ``min(up{job="app"})``): a ratio over
    ``[30s]`` keeps answering its old value ~30 s after the application stops reporting, ``up`` drops to 0
    at the next scrape. ``max_age_seconds`` refuses a sample stamped longer ago (``timestamp()`` of the
    query): it only means something for stored samples (a recording rule, a federated or self-stamped
    metric); an expression like ``rate()`` is as old as the query. ``scale`` multiplies the answer (100
    turns a ratio into percent).
    """

    url: Url
    query: str = Field(min_length=1)
    up_query: str | None = Field(default=None, min_length=1)
    scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_age_seconds: Seconds | None = None
    timeout_seconds: Seconds = 5


class HttpConfig(_Model):
    """A GET of ``url``: 2xx within the timeout is healthy (1.0), anything else failing (0.0). With
    ``json_field`` (a dotted path, list indexes as numbers: ``checks.0.latency_ms``) it reads that number
    from the JSON body instead, and a failed request is unknown, not 0."""

    url: Url
    timeout_seconds: Seconds = 5
    json_field: str | None = Field(default=None, pattern=r"^[^.]+(\.[^.]+)*$")


class SqlConfig(_Model):
    """A query on the environment's target (its ``dsn_env``) answering one number, in a read-only
    transaction under ``statement_timeout``."""

    query: str = Field(min_length=1)
    timeout_seconds: Seconds = 5


class CommandConfig(_Model):
    """A command (no shell) printing a number: the first number on its last non-empty line of output, or
    the first match of ``pattern`` (its group when it has one)."""

    argv: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    timeout_seconds: Seconds = 10
    pattern: Annotated[str | None, AfterValidator(_pattern)] = None


class SourceConfig(_Model):
    """Exactly one kind of source."""

    prometheus: PrometheusConfig | None = None
    http: HttpConfig | None = None
    sql: SqlConfig | None = None
    command: CommandConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(key) for key in data if key not in KINDS]
            if unknown or len(data) != 1:
                given = f"{', '.join(map(repr, unknown))} is not a source kind; " if unknown else ""
                raise ValueError(f"{given}expected exactly one of {', '.join(KINDS)}")
        return data

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @property
    def settings(self) -> PrometheusConfig | HttpConfig | SqlConfig | CommandConfig:
        return getattr(self, self.kind)


class SourcesConfig(_Model):
    """The application's signals the window judges; each is optional (an environment without any is
    watched through its database signals only)."""

    error_rate: SourceConfig | None = None  # percent, 0-100
    latency: SourceConfig | None = None  # any unit, compared with the baseline taken before apply
    health: SourceConfig | None = None  # 1.0 passing, 0.0 failing

    def configured(self) -> dict[str, SourceConfig]:
        return {name: source for name, source in self if source is not None}


class MonitorConfig(_Model):
    """``environments.<name>.monitor``."""

    sources: SourcesConfig = SourcesConfig()
    pagerduty_routing_key_env: Annotated[str | None, AfterValidator(_env_name)] = None
    pagerduty_url: Url = "https://events.pagerduty.com/v2/enqueue"

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pagerduty_routing_key" in data:
            raise ValueError(
                "pagerduty_routing_key: routing keys never go in the file; put it in an environment "
                "variable and name it in pagerduty_routing_key_env"
            )
        return data
