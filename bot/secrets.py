"""The secrets the config points at, read from the environment: each target's database password (from
its DSN), a git source's token, a PagerDuty routing key. None matches a pattern ``bot.redact`` knows (a
password printed by a runbook command, pasted into a reason), so they are masked by their value."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot.config import BotConfig
from bot.execution.target import dsn_secrets


def known_secrets(config: BotConfig, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every such value that is set, longest first (one inside another stays hidden)."""
    environ = environ if environ is not None else os.environ
    found: set[str] = set()
    for env in config.environments.values():
        dsn = env.dsn(environ)
        found.update(dsn_secrets(dsn) if dsn else ())
        named = [env.git.token_env if env.git else None, env.monitor.pagerduty_routing_key_env]
        found.update(value for value in (environ.get(n or "") for n in named) if value)
    return tuple(sorted(found, key=lambda s: (-len(s), s)))
