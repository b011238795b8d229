"""``migrate-bot`` on the command line: plan for CI pipelines, and the approval commands for operators."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from bot.cli import EXIT_FAIL_ON, EXIT_USAGE, main
from tests.conftest import EXAMPLES

MIGRATIONS = EXAMPLES / "migrations"


@pytest.fixture(autouse=True)
def no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MIGRATE_BOT_CONFIG", "SLACK_BOT_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_plan_text_names_hazards_locks_rollback_and_approvals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "066_index_without_concurrently.sql")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan: 066_index_without_concurrently.sql → development")
    assert "CREATE INDEX CONCURRENTLY" in out and "SHARE lock" in out
    assert "DROP INDEX nchat.idx_messages_created_at;" in out
    assert "No approval required" in out


def test_plan_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complexity"] == "high" and data["rollback"]["complete"] is False
    assert [h["code"] for h in data["analysis"]["hazards"]] == ["drop_column"]
    assert main(["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--format", "markdown"]) == 0
    assert "### Hazards" in capsys.readouterr().out


@pytest.mark.parametrize(("level", "code"), [("high", EXIT_FAIL_ON), ("medium", EXIT_FAIL_ON)])
def test_fail_on_stops_a_pipeline(level: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--fail-on", level]) == code
    assert f"reaches --fail-on {level}" in capsys.readouterr().err


def test_fail_on_passes_a_safe_migration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "058_messages_user_fk.sql"), "--fail-on", "medium"]) == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["plan", "nowhere.sql"], "no migration `nowhere.sql`"),
        (
            ["plan", str(MIGRATIONS / "058_messages_user_fk.sql"), "--env", "moon"],
            "unknown environment 'moon'",
        ),
        (["--config", "/nonexistent.yaml", "status", "1"], "cannot read"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("migrate-bot: ") and words in err


def test_break_glass_approve_status_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS / "058_messages_user_fk.sql", migrations)
    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["environments"] = {"production": {"migrations_dir": str(migrations), "server_version_num": 180000}}
    config["default_environment"] = "production"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/state.db")

    from bot.app import build_services
    from bot.config import Settings, load_config
    from bot.notifier import ConsoleNotifier
    from bot.planning import submit_plan

    services = build_services(Settings.from_env(), load_config(path))
    plan = submit_plan(
        db=services.db,
        config=services.config,
        notifier=ConsoleNotifier(write=lambda _: None),
        env_name=None,
        file_arg="058_messages_user_fk.sql",
        author="U0AUTHOR",
        channel_id="C0MIGRATE1",
    )
    assert (
        main(["approve", str(plan.id), "--role", "qa", "--operator", "dana", "--reason", " "]) == EXIT_USAGE
    )
    capsys.readouterr()
    assert (
        main(["approve", str(plan.id), "--role", "qa", "--operator", "dana", "--reason", "QA lead on leave"])
        == 0
    )
    assert "approved as QA (break-glass: QA lead on leave)" in capsys.readouterr().out
    assert main(["status", str(plan.id), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["given"][0]["via"] == "cli" and status["given"][0]["user"] == "dana"
    assert status["missing"] == ["technical_lead", "peer_review"]
    assert main(["list"]) == 0
    assert "missing: Technical Lead, Peer Review" in capsys.readouterr().out
    assert (
        main(["approve", str(plan.id), "--role", "qa", "--operator", "eve", "--reason", "again"])
        == EXIT_USAGE
    )
    assert "QA already approved" in capsys.readouterr().err
