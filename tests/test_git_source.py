"""Migrations from a git repository: a real repository made with ``git`` on the local filesystem, planned
and approved at its newest commit, planned again across a commit that leaves the file alone (nothing new)
and one that changes it (a new plan at the new commit, the approved one superseded), and at a tag from
the CLI; the plan names its commit. The target is a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.app import Services, build_services
from bot.cli import main
from bot.config import ConfigError, Settings, parse_config
from bot.demo import load_example_schema
from bot.report import title
from bot.states import PlanState
from bot.views import plan_view
from storage.models import EventRecord, OutboxRecord
from tests.conftest import EXAMPLES
from tests.execution.test_runner import AUTHOR, ROLES, approved

FILE = "054_add_message_bookmarks.sql"


class Repository:
    """An application's repository with its migrations in db/migrations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "--quiet", "--initial-branch=main")
        migrations = path / "db" / "migrations"
        migrations.mkdir(parents=True)
        for name in (FILE, FILE.replace(".sql", ".rollback.sql")):
            shutil.copy(EXAMPLES / "migrations" / name, migrations / name)
        (path / "README.md").write_text("the application\n")
        self.commit("the bookmarks migration")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "app")


def config_data(tmp_path: Path, repo: Repository, **git: Any) -> dict[str, Any]:
    source = {"url": str(repo.path), "path": "db/migrations", "cache_dir": str(tmp_path / "cache"), **git}
    env = {"dsn_env": "TARGET_DSN", "git": source, "procedure": "zero_downtime"}
    return {"environments": {"production": env}, "roles": ROLES}


@pytest.fixture
def services(tmp_path: Path, repo: Repository, target_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Services:
    load_example_schema(target_dsn, EXAMPLES)
    monkeypatch.setenv("TARGET_DSN", target_dsn)
    config = parse_config(config_data(tmp_path, repo), tmp_path)
    return build_services(Settings(database_url=f"sqlite:///{tmp_path}/state.db"), config)


def test_plans_follow_the_commits_that_change_their_file(services: Services, repo: Repository) -> None:
    first = repo.git("rev-parse", "HEAD")
    plan_id = approved(services, FILE, "production")
    plan, status = services.approvals.status(plan_id)
    assert plan.source_commit == first
    assert f"{FILE} @ {first[:12]} → production" in title(plan_view(services.config, plan, status))
    with services.db.session() as session:
        signed = session.scalars(select(EventRecord).where(EventRecord.kind == "approval")).all()
        said = session.scalars(select(OutboxRecord.payload).where(OutboxRecord.kind == "thread")).all()
    assert signed and all(e.data["commit"] == first for e in signed)  # each sign-off names the commit
    assert any(f"at commit `{first[:12]}`" in p.get("text", "") for p in said)

    (repo.path / "README.md").write_text("the application, documented\n")
    repo.commit("docs")
    again = services.planner.submit(env_name="production", file_arg=FILE, author=AUTHOR, typed_in="C0HERE")
    assert again.unchanged and again.plan is not None and again.plan.id == plan_id  # same bytes: nothing new
    assert services.approvals.status(plan_id)[0].state == PlanState.APPROVED

    migration = repo.path / "db" / "migrations" / FILE
    migration.write_text(migration.read_text() + "\n-- reviewed: the bookmarks of deleted users go too\n")
    changed = repo.commit("the bookmarks table says what it is")
    newer = services.planner.submit(env_name="production", file_arg=FILE, author=AUTHOR, typed_in="C0HERE")
    assert newer.plan is not None and newer.superseded == (plan_id,)
    assert newer.plan.source_commit == changed and newer.plan.state == PlanState.AWAITING_APPROVAL.value
    assert services.approvals.status(plan_id)[0].state == PlanState.SUPERSEDED
    # the approved commit's files stay as they were, for whoever reads the old plan
    assert "reviewed:" not in Path(plan.file_path).read_text()


def test_the_cli_plans_at_a_tag_and_refuses_what_is_not_a_ref(
    tmp_path: Path, repo: Repository, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tagged = repo.git("rev-parse", "HEAD")
    repo.git("tag", "v1")
    migration = repo.path / "db" / "migrations" / FILE
    migration.write_text(migration.read_text().replace("bookmarks", "saved_items"))
    repo.commit("renamed")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(tmp_path, repo)))
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(path))

    assert main(["plan", FILE, "--env", "production", "--ref", "v1", "--format", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["commit"] == tagged and "saved_items" not in json.dumps(planned["analysis"])
    assert main(["plan", FILE, "--env", "production", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["commit"] == repo.git("rev-parse", "HEAD")

    assert main(["plan", FILE, "--env", "production", "--ref", "no-such-branch"]) == 2
    assert "git fetch: couldn't find remote ref no-such-branch" in capsys.readouterr().err
    assert main(["plan", FILE, "--env", "production", "--ref", "--upload-pack=touch /tmp/x"]) == 2
    assert "is not a branch, tag or commit" in capsys.readouterr().err
    assert main(["plan", FILE, "--env", "production", "--ref", "0" * 40]) == 2
    assert f"commit `{'0' * 40}` is not on `main`" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("git", "words"),
    [
        ({"url": "https://dev:hunter2@git.example.com/app.git"}, "credentials never go in the file"),
        (
            {"url": "https://git.example.com/app.git", "path": "../elsewhere"},
            "a directory inside the repository",
        ),
        ({"url": "https://git.example.com/app.git", "ref": "-c"}, "ref"),
    ],
)
def test_a_git_source_that_cannot_be_used_is_refused_by_the_config(
    tmp_path: Path, git: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"environments": {"production": {"git": git}}, "roles": ROLES}, tmp_path)
    assert words in str(info.value)
    assert "hunter2" not in str(info.value)


def test_migrations_come_from_one_place(tmp_path: Path, repo: Repository) -> None:
    env = {"migrations_dir": str(tmp_path), "git": {"url": str(repo.path)}}
    with pytest.raises(ConfigError, match="migrations come from one place"):
        parse_config({"environments": {"production": env}, "roles": ROLES}, tmp_path)


def test_a_token_is_read_from_the_environment_and_never_shown(
    tmp_path: Path, repo: Repository, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = config_data(tmp_path, repo, url=f"https://127.0.0.1:{port}/app.git", token_env="GIT_TOKEN")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(path))
    monkeypatch.delenv("GIT_TOKEN", raising=False)
    assert main(["plan", FILE, "--env", "production"]) == 2
    assert "GIT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("GIT_TOKEN", "ghp_s3cretT0ken")
    assert main(["plan", FILE, "--env", "production"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("migrate-bot: git fetch: unable to access") and "s3cret" not in said
