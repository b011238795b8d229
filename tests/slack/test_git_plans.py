"""``/migrate plan <file> <env> --ref <ref>`` on an environment whose migrations come from a real git
repository: the plan is read at that ref and names its commit; a ref the repository lacks is an ephemeral
answer that stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slack.conftest import RunningBot, start_bot, write_config
from tests.slack.fake_api import FakeSlack
from tests.test_git_source import FILE, Repository


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "app")


@pytest.fixture
def slack_bot(tmp_path: Path, repo: Repository, fake_slack: FakeSlack) -> Iterator[RunningBot]:
    source = {"url": str(repo.path), "path": "db/migrations", "cache_dir": str(tmp_path / "cache")}
    config = write_config(tmp_path, tmp_path, migrations_dir=None, git=source)
    yield from start_bot(tmp_path, fake_slack, config, tmp_path)


def test_slack_plans_at_the_ref_it_is_given(slack_bot: RunningBot, repo: Repository) -> None:
    tagged = repo.git("rev-parse", "HEAD")
    repo.git("tag", "v1")
    (repo.path / "db" / "migrations" / FILE).write_text("SELECT 1;\n")
    repo.commit("not the migration any more")

    status, body = slack_bot.command(f"plan {FILE} production --ref v1")
    assert status == 200 and f"Planning `{FILE}` at `v1` for production" in body
    posted = slack_bot.fake.wait_for("chat.postMessage")[0]
    assert f"{FILE} @ {tagged[:12]} → production" in json.dumps(posted.args["blocks"], ensure_ascii=False)
    assert slack_bot.plan(1).source_commit == tagged

    slack_bot.command(f"plan {FILE} production --ref=nope", response="bad")
    reply = slack_bot.fake.wait_for_response("bad")[0]
    assert reply["response_type"] == "ephemeral" and "couldn't find remote ref nope" in reply["text"]
    assert slack_bot.counts()["plans"] == 1
