"""Production on the test's target with plan 054 and its rollback in the migrations folder: the services
the monitor's tests run plans on."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from bot.app import Services, build_services
from bot.clock import Clock, system_clock
from bot.config import Settings, parse_config
from tests.conftest import EXAMPLES
from tests.execution.test_runner import ROLES

FILE = "054_add_message_bookmarks.sql"
# What an operator's script does: print a number; here, the one the test wrote to a file.
_PRINT_FILE = "import sys; print(open(sys.argv[1]).read())"


def file_source(path: Path) -> dict[str, Any]:
    """A ``command`` source answering what ``path`` holds (the test sets the metric by writing it)."""
    return {"command": {"argv": [sys.executable, "-c", _PRINT_FILE, str(path)]}}


def copy_migrations(tmp_path: Path) -> Path:
    """The test's migrations folder, with plan 054 and its rollback."""
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    for name in (FILE, FILE.replace(".sql", ".rollback.sql")):
        shutil.copy(EXAMPLES / "migrations" / name, migrations / name)
    return migrations


def production_config(
    tmp_path: Path, *, env_monitor: dict[str, Any], policy: dict[str, Any]
) -> dict[str, Any]:
    """Production (zero-downtime, channel C0PROD) on TARGET_DSN with the environment's ``monitor:`` section
    and the ``policy:`` overrides given, as a config file holds it."""
    env = {
        "dsn_env": "TARGET_DSN",
        "migrations_dir": str(copy_migrations(tmp_path)),
        "backup_dir": str(tmp_path / "backups"),
        "procedure": "zero_downtime",
        "channel": "C0PROD",
        "monitor": env_monitor,
    }
    return {"environments": {"production": env}, "roles": ROLES, "policy": policy}


def production_services(
    tmp_path: Path,
    *,
    env_monitor: dict[str, Any],
    policy: dict[str, Any],
    clock: Clock = system_clock,
) -> Services:
    """The services on ``production_config``; the store beside the test, kept across calls (a restart)."""
    data = production_config(tmp_path, env_monitor=env_monitor, policy=policy)
    settings = Settings(database_url=f"sqlite:///{tmp_path}/state.db")
    return build_services(settings, parse_config(data, tmp_path), clock=clock)
