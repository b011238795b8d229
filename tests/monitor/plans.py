"""Production on the test's target with plan 054 and its rollback in the migrations folder: the services
the monitor's tests run plans on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bot.app import Services, build_services
from bot.clock import Clock, system_clock
from bot.config import Settings, parse_config
from tests.conftest import EXAMPLES
from tests.execution.test_runner import ROLES

FILE = "054_add_message_bookmarks.sql"


def copy_migrations(tmp_path: Path) -> Path:
    """The test's migrations folder, with plan 054 and its rollback."""
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    for name in (FILE, FILE.replace(".sql", ".rollback.sql")):
        shutil.copy(EXAMPLES / "migrations" / name, migrations / name)
    return migrations


def production_services(
    tmp_path: Path,
    *,
    env_monitor: dict[str, Any],
    policy: dict[str, Any],
    clock: Clock = system_clock,
) -> Services:
    """Production (zero-downtime, channel C0PROD) on TARGET_DSN with the environment's ``monitor:`` section
    and the ``policy:`` overrides given; the store beside the test, kept across calls (a restart)."""
    env = {
        "dsn_env": "TARGET_DSN",
        "migrations_dir": str(copy_migrations(tmp_path)),
        "backup_dir": str(tmp_path / "backups"),
        "procedure": "zero_downtime",
        "channel": "C0PROD",
        "monitor": env_monitor,
    }
    data = {"environments": {"production": env}, "roles": ROLES, "policy": policy}
    settings = Settings(database_url=f"sqlite:///{tmp_path}/state.db")
    config = parse_config(data, tmp_path)
    return build_services(settings, config, clock=clock)
