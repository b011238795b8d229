"""The bot as ``migrate-bot serve`` runs it (Bolt on waitress), against the fake Slack Web API."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import waitress
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import undefer

from bot.app import Services, build_services
from bot.config import Settings, load_config
from handlers.app import build_app
from handlers.server import EVENTS_PATH, wsgi_app
from handlers.slack_notifier import make_client, slack_group_members
from handlers.worker import Runtime, Worker, thread_pools
from storage.models import ApprovalRecord, EventRecord, PlanRecord
from tests.conftest import EXAMPLES
from tests.slack.fake_api import FakeSlack
from tests.slack.signing import (
    block_actions_body,
    post,
    signed_headers,
    slash_command_body,
    view_submission_body,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0MIGRATE1"
AUTHOR = "U0AUTHOR"
ROLES = {
    "technical_lead": {"users": ["U0TL", "U0TL2", "U0TWOHATS"]},
    "product_owner": {"users": ["U0PO"]},
    "cto": {"users": ["U0CTO", "U0TWOHATS"]},
    "qa": {"groups": ["S0QA"]},
    "architect": {"users": ["U0ARCH"]},
    "security": {"groups": ["S0SEC"]},
    "on_call": {"users": ["U0ONCALL"]},
}
EXAMPLE_FILES = [
    "054_add_message_bookmarks.sql",
    "054_add_message_bookmarks.rollback.sql",
    "061_drop_legacy_field.sql",
    "066_index_without_concurrently.sql",
]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.group_members = {"S0QA": ["U0QA1", "U0QA2"], "S0SEC": ["U0SEC"]}
        yield fake
    assert fake.invalid_payloads == [], "the bot sent payloads Slack would refuse"


@dataclass
class RunningBot:
    url: str
    services: Services
    fake: FakeSlack
    migrations: Path

    def send(self, body: str, **extra: str) -> tuple[int, str]:
        return post(self.url, body, {**signed_headers(body, SECRET), **extra})

    def command(self, text: str, *, user: str = AUTHOR, response: str = "default") -> tuple[int, str]:
        body = slash_command_body(
            text, user_id=user, channel_id=CHANNEL, response_url=self.fake.response_url(response)
        )
        return self.send(body)

    def click(
        self,
        action_id: str,
        plan_id: int,
        *,
        user: str,
        action_ts: str | None = None,
        response: str = "click",
        **h: str,
    ) -> tuple[int, str]:
        plan = self.plan(plan_id)
        body = block_actions_body(
            user_id=user,
            action_id=action_id,
            value=str(plan_id),
            channel_id=CHANNEL,
            message_ts=plan.message_ts or "",
            response_url=self.fake.response_url(response),
            action_ts=action_ts,
        )
        return self.send(body, **h)

    def submit(
        self, callback_id: str, plan_id: int, values: dict[str, dict[str, Any]], *, user: str, view_id: str
    ) -> tuple[int, str]:
        body = view_submission_body(
            user_id=user,
            callback_id=callback_id,
            private_metadata=str(plan_id),
            values=values,
            view_id=view_id,
        )
        return self.send(body)

    def plan(self, plan_id: int) -> PlanRecord:
        """The stored plan with every column, its analysis too (read only by what uses it)."""
        with self.services.db.session() as session:
            plan = session.get(PlanRecord, plan_id, options=[undefer("*")])
            assert plan is not None
            return plan

    def counts(self) -> dict[str, int]:
        with self.services.db.session() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (PlanRecord, EventRecord, ApprovalRecord)
            }


def write_config(
    tmp_path: Path, migrations: Path, *, settings: dict[str, Any] | None = None, **environment: Any
) -> Path:
    """Production and staging on ``migrations``; ``environment`` keys go to production only, ``settings``
    are top-level sections (``serve``, ``delivery``)."""
    env = {"migrations_dir": str(migrations), "server_version_num": 180000}
    data = {
        "default_environment": "production",
        "environments": {"production": {**env, **environment}, "staging": env},
        "roles": ROLES,
        **(settings or {}),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    for name in EXAMPLE_FILES:
        shutil.copy(EXAMPLES / "migrations" / name, path / name)
    (path / "empty.sql").write_text("  \n")
    (path / "broken.sql").write_text("SELECT 1;\nALTER TABLE nchat.x ADD COLUMN;\n")
    (tmp_path / "secret.sql").write_text("DROP TABLE everything;\n")
    return path


def _serve(server: Any) -> None:
    # the fixture closes the socket under the select loop: that is how waitress stops
    with contextlib.suppress(OSError):
        server.run()


def start_bot(tmp_path: Path, fake: FakeSlack, config_path: Path, migrations: Path) -> Iterator[RunningBot]:
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": fake.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path}/state.db",
            "MIGRATE_BOT_CONFIG": str(config_path),
        }
    )
    client = make_client(fake.token, fake.api_url)
    config = load_config(config_path)
    services = build_services(settings, config, group_members=slack_group_members(client))
    runtime = Runtime(services).start()
    pools = thread_pools(Worker(services, client))
    app = build_app(settings, config, pools, client)
    server = waitress.create_server(wsgi_app(app), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=_serve, args=(server,), daemon=True)
    thread.start()
    try:
        yield RunningBot(f"http://127.0.0.1:{server.effective_port}{EVENTS_PATH}", services, fake, migrations)
    finally:
        server.close()
        pools.shutdown()
        runtime.stop()


@pytest.fixture
def bot(tmp_path: Path, fake_slack: FakeSlack, migrations: Path) -> Iterator[RunningBot]:
    yield from start_bot(tmp_path, fake_slack, write_config(tmp_path, migrations), migrations)
