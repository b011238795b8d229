"""One wording for a plan's state: people read ``awaiting approval`` wherever the CLI prints it; JSON keeps
the stored value (``awaiting_approval``) for machines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from bot.app import build_services
from bot.cli import main
from bot.config import Settings, load_config
from bot.states import OPEN_STATES, PlanState
from storage.models import PlanRecord
from tests.conftest import EXAMPLES

# The states whose stored value and words differ.
SPELLED = [state for state in PlanState if state.value != state.label]


@pytest.fixture
def planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Settings, Path]:
    """A production plan in a fresh store, made as /migrate plan makes it."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(EXAMPLES / "migrations" / "058_messages_user_fk.sql", migrations)
    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["environments"] = {"production": {"migrations_dir": str(migrations), "server_version_num": 180000}}
    config["default_environment"] = "production"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/state.db")
    settings = Settings.from_env()
    services = build_services(settings, load_config(path))
    plan = services.planner.submit(
        env_name=None, file_arg="058_messages_user_fk.sql", author="U0AUTHOR", typed_in="C0MIGRATE1"
    ).plan
    assert plan is not None
    return plan.id, settings, path


def _put(planned: tuple[int, Settings, Path], state: PlanState) -> None:
    """Where a run, a rollback or an expiry would have taken the plan (each path has tests of its own)."""
    plan_id, settings, path = planned
    services = build_services(settings, load_config(path))
    with services.db.session() as session:
        session.get(PlanRecord, plan_id).state = state.value  # type: ignore[union-attr]


@pytest.mark.parametrize("state", SPELLED, ids=lambda s: s.value)
def test_status_says_the_state_in_words_and_json_keeps_its_value(
    state: PlanState, planned: tuple[int, Settings, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plan_id = planned[0]
    _put(planned, state)
    assert main(["status", str(plan_id)]) == 0
    text = capsys.readouterr().out
    assert f": {state.label} · author U0AUTHOR" in text.splitlines()[0] and state.value not in text
    assert main(["status", str(plan_id), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == state.value


@pytest.mark.parametrize("state", sorted(OPEN_STATES & set(SPELLED)), ids=lambda s: s.value)
def test_list_says_an_open_plans_state_in_words(
    state: PlanState, planned: tuple[int, Settings, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _put(planned, state)
    assert main(["list"]) == 0
    row = capsys.readouterr().out.splitlines()[0].split("\t")
    assert row[:4] == [f"#{planned[0]}", "production", "058_messages_user_fk.sql", state.label]
