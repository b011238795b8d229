"""Two plans that really ran on PostgreSQL, their monitor windows sampled by hand with the clock moved 30 s
a sample, the application's error rate, latency and health read by command sources from files the test
writes: one completed all clear, one breached, paged, acknowledged and rolled back.

Both carry the target's password where people and tools put it: a break-glass approval's reason, a
runbook command's output, a failed step's error (and the rolled-back one a rollback's reason). The
target DSN names that password; the server trusts local connections, so it is never checked.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from psycopg.conninfo import make_conninfo

from bot.app import Services, build_services
from bot.config import Settings, load_config
from bot.demo import load_example_schema
from bot.monitor.incidents import IncidentKind
from bot.states import PlanState
from tests.clock import Clock
from tests.conftest import EXAMPLES
from tests.execution.test_runner import AUTHOR, ROLES

FILE = "054_add_message_bookmarks.sql"
PASSWORD = "Vq7pZ-hunter-4242"
# When the run starts: a fixed moment, so the tests can say when things happened.
START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
WINDOW_MINUTES = 10
METRICS = ("error_rate", "latency", "health")
EARLY_MINUTES = 2
# Fails the first time (its marker file missing) with the password in its output, as a tool that prints
# its connection string would; passes when tried again.
FLAKY = (
    "import pathlib, sys\n"
    "marker = pathlib.Path(sys.argv[1])\n"
    "if not marker.exists():\n"
    "    marker.touch()\n"
    f"    print('load balancer refused: app user password {PASSWORD} rejected')\n"
    "    sys.exit(1)\n"
    "print('maintenance mode: off')\n"
)


@dataclass
class Ran:
    services: Services
    clock: Clock
    plan_id: int
    app: Path

    def set_app(self, *, error_rate: float = 0.2, latency: float = 100, health: float = 1) -> None:
        for name, value in zip(METRICS, (error_rate, latency, health), strict=True):
            (self.app / name).write_text(f"{value}\n")

    def sample(self, count: int = 1) -> None:
        """Move time one interval on and take the samples and pages that are due, as the leader's watch."""
        for _ in range(count):
            self.clock.now += timedelta(seconds=30)
            for monitor_id in self.services.monitors.due():
                self.services.monitors.tick(monitor_id)
            for incident_id in self.services.incidents.due():
                self.services.incidents.escalate(incident_id)

    def state(self) -> PlanState:
        return PlanState(self.services.approvals.status(self.plan_id)[0].state)


def make_services(tmp_path: Path, clock: Clock, app: Path) -> Services:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for name in (FILE, FILE.replace(".sql", ".rollback.sql")):
        shutil.copy(EXAMPLES / "migrations" / name, migrations / name)
    sources = {
        metric: {"command": {"argv": ["cat", str(app / metric)]}}
        for metric in ("error_rate", "latency", "health")
    }
    env = {
        "dsn_env": "TARGET_DSN",
        "migrations_dir": str(migrations),
        "backup_dir": str(tmp_path / "backups"),
        "procedure": "standard",
        "channel": "C0PROD",
        "monitor": {"sources": sources},
    }
    runbook = {
        "maintenance_on": [sys.executable, "-c", f"print('maintenance mode: on (db password {PASSWORD})')"],
        "maintenance_off": [sys.executable, "-c", FLAKY, str(tmp_path / "maintenance-off-tried")],
    }
    policy = {
        "monitor": {
            "window_minutes": WINDOW_MINUTES,
            "interval_seconds": 30,
            "rollback_triggers": {"error_rate_window_minutes": EARLY_MINUTES},
        }
    }
    data = {"environments": {"production": env}, "roles": ROLES, "runbook": runbook, "policy": policy}
    path = tmp_path / "config.yaml"  # a file, for the CLI's tests
    path.write_text(yaml.safe_dump(data))
    settings = Settings(database_url=f"sqlite:///{tmp_path}/state.db")
    services = build_services(settings, load_config(path), clock=clock)
    return services


def run(tmp_path: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Ran:
    """Plan 054 approved (one sign-off break-glass, its reason naming the password) and run: maintenance
    off fails once, the run is resumed a minute later, and the window opens."""
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("TARGET_DSN", make_conninfo(target_dsn, password=PASSWORD))
    clock = Clock()
    clock.now = START - timedelta(minutes=30)
    app = tmp_path / "app"
    app.mkdir()
    services = make_services(tmp_path, clock, app)
    plan = services.planner.submit(
        env_name="production", file_arg=FILE, author=AUTHOR, typed_in="C0PROD"
    ).plan
    assert plan is not None
    ran = Ran(services, clock, plan.id, app)
    ran.set_app()
    _, status = services.approvals.status(plan.id)
    signers = {"peer_review": "U0PO", "technical_lead": "U0TL", "qa": "U0QA1"}
    for minutes, slot in enumerate(status.missing):
        clock.now += timedelta(minutes=minutes + 1)
        if slot.name == "qa":
            reason = f"QA signed on the phone; Slack is down (db password {PASSWORD})"
            services.approvals.approve(plan.id, user="U0QA1", slot="qa", break_glass_reason=reason)
        else:
            services.approvals.approve(plan.id, user=signers[slot.name], slot=slot.name)
    assert ran.state() is PlanState.APPROVED
    clock.now = START
    order = services.runner.order_run(plan.id, user="U0TL", what="all", operator=True)
    assert services.runner.execute(order) is PlanState.FAILED  # maintenance off, the first time
    clock.now += timedelta(minutes=1)
    order = services.runner.order_run(plan.id, user="U0ONCALL", what="all", operator=True)
    assert services.runner.execute(order) is PlanState.MONITORING
    return ran


@pytest.fixture
def completed(tmp_path: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Ran:
    """The whole window sampled healthy: all clear, completed."""
    ran = run(tmp_path, target_dsn, monkeypatch)
    ran.sample(2 * WINDOW_MINUTES + 1)
    assert ran.state() is PlanState.COMPLETED
    return ran


@pytest.fixture
def rolled_back(tmp_path: Path, target_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Ran:
    """Healthy for the early minutes, then 7 % errors and 30 % slower: a P2 incident, on-call paged, who
    acknowledges two minutes later; the Technical Lead rolls back a minute after and resolves it."""
    ran = run(tmp_path, target_dsn, monkeypatch)
    ran.sample(6)
    ran.set_app(error_rate=7, latency=130)
    ran.sample(2)
    with ran.services.db.session() as session:
        incident = ran.services.incidents.unresolved(session, ran.plan_id)
        assert incident is not None and incident.kind == IncidentKind.BREACH, incident
        incident_id = incident.id
    ran.sample(4)
    ran.services.incidents.acknowledge(incident_id, user="U0ONCALL")
    ran.sample(2)
    reason = f"bookmarks break sign-in; the app logs its DSN with password {PASSWORD}"
    order = ran.services.runner.order_rollback(ran.plan_id, user="U0TL", reason=reason)
    assert ran.services.runner.execute(order) is PlanState.ROLLED_BACK
    ran.clock.now += timedelta(minutes=1)
    ran.services.incidents.resolve(incident_id, user="U0TL", resolution="rolled back; errors back to normal")
    return ran
