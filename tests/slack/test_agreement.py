"""``/migrate plan`` in Slack and ``migrate-bot plan`` on the CLI say the same thing about every example."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo import load_example_schema
from bot.embedded import create_database, drop_database
from tests.conftest import EXAMPLES
from tests.slack.conftest import RunningBot, start_bot, write_config
from tests.slack.fake_api import FakeSlack
from tests.test_examples import EXPECTED


@pytest.fixture(scope="module")
def seeded(pg_admin_dsn: str) -> Iterator[str]:
    dsn = create_database(pg_admin_dsn, "agreement_seeded")
    load_example_schema(dsn, EXAMPLES)
    yield dsn
    drop_database(pg_admin_dsn, "agreement_seeded")


@pytest.fixture
def live_bot(
    tmp_path: Path, fake_slack: FakeSlack, seeded: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningBot]:
    monkeypatch.setenv("AGREEMENT_DSN", seeded)
    migrations = EXAMPLES / "migrations"
    config = write_config(tmp_path, migrations, dsn_env="AGREEMENT_DSN")
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(config))
    yield from start_bot(tmp_path, fake_slack, config, migrations)


def test_slack_and_the_cli_agree_on_every_example(
    live_bot: RunningBot, capsys: pytest.CaptureFixture[str]
) -> None:
    for number, name in enumerate(sorted(EXPECTED), start=1):
        assert main(["plan", name, "--env", "production", "--format", "json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        live_bot.command(f"plan {name} production")
        live_bot.fake.wait_for("chat.postMessage", count=4 * number)  # the plan and its three thread replies
        stored = live_bot.plan(number)
        assert stored.file_name == cli["file"] == name
        assert stored.sha256 == cli["sha256"]
        assert stored.analysis == cli["analysis"], name
        assert stored.rollback_sql == cli["rollback"]["sql"], name
        assert stored.complexity == cli["complexity"] == EXPECTED[name][0]
