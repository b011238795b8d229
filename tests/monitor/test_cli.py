"""The monitor from the CLI, for teams with no ``serve``: a plan run by ``migrate-bot run`` is watched,
an incident is opened, acknowledged and resolved by hand, and ``migrate-bot watch`` runs the window to its
end; bad input is one line on stderr and exit 2. The target is a real PostgreSQL; the error rate comes from
a command whose answer the test sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.app import build_services
from bot.cli import main
from bot.config import Settings, load_bot_config
from bot.demo import load_example_schema
from bot.states import PlanState
from storage.models import IncidentRecord, SampleRecord
from tests.conftest import EXAMPLES
from tests.execution.test_runner import approved
from tests.monitor.plans import FILE, file_source, production_config


@pytest.fixture
def configured(tmp_path: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    load_example_schema(target_dsn, EXAMPLES)
    rate = tmp_path / "error_rate"
    rate.write_text("0.2\n")
    policy = {"monitor": {"window_minutes": 3 / 60, "interval_seconds": 0.5}}
    sources = {"error_rate": file_source(rate)}
    data = production_config(tmp_path, env_monitor={"sources": sources}, policy=policy)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    for name, value in {
        "TARGET_DSN": target_dsn,
        "DATABASE_URL": f"sqlite:///{tmp_path}/state.db",
        "MIGRATE_BOT_CONFIG": str(path),
    }.items():
        monkeypatch.setenv(name, value)
    return path


def test_a_run_from_the_cli_is_watched_and_its_incident_answered_there(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env()
    services = build_services(settings, load_bot_config(settings, None))
    plan_id = approved(services, FILE, "production")
    assert main(["incident", str(plan_id), "--severity", "p2", "--reason", "x", "--operator", "dana"]) == 2
    assert "an incident is about a plan that ran" in capsys.readouterr().err

    assert main(["run", str(plan_id), "--all", "--operator", "dana"]) == 0
    assert f"plan #{plan_id} is monitoring" in capsys.readouterr().out
    reason = "search results are empty for some users"
    assert main(["incident", str(plan_id), "--severity", "p3", "--reason", reason, "--operator", "dana"]) == 0
    assert "incident #1 (P3) is open" in capsys.readouterr().out
    assert main(["acknowledge", "1", "--operator", "dana"]) == 0
    assert "incident #1 on plan #1 is acknowledged" in capsys.readouterr().out
    assert main(["acknowledge", "7", "--operator", "dana"]) == 2
    assert capsys.readouterr().err.strip() == "migrate-bot: no incident #7"

    assert main(["resolve", "1", "--operator", "dana", "--resolution", "a cache, not the migration"]) == 0
    assert "is resolved" in capsys.readouterr().out
    assert main(["watch", str(plan_id)]) == 0  # until the window's 3 s are over
    out = capsys.readouterr().out
    assert "*Monitor*" not in out and "👀 Monitor" in out  # Slack's marks are gone on a terminal
    assert f"plan #{plan_id} is completed" in out
    with services.db.session() as session:
        incident = session.scalars(select(IncidentRecord)).one()
        assert (incident.acknowledged_by, incident.resolved_by) == ("dana", "dana")
        assert incident.resolution == "a cache, not the migration"
        assert len(session.scalars(select(SampleRecord)).all()) >= 4
    assert services.approvals.status(plan_id)[0].state == PlanState.COMPLETED
