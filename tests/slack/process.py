"""``migrate-bot serve`` in its own process, as deployed, so a test can SIGKILL it and start it again.

In-process bots (tests/slack/conftest.py) cannot lose a thread mid-request or restart on the same store;
this harness can. The bot is reached only from outside: signed HTTP requests to /slack/events, the fake
Slack Web API it calls, and its SQLite store read with plain SQL (no ORM: the rows as committed).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.slack.conftest import AUTHOR, CHANNEL, SECRET, write_config
from tests.slack.fake_api import FakeSlack
from tests.slack.signing import block_actions_body, post, signed_headers, slash_command_body

REPO = Path(__file__).resolve().parents[2]
EVENTS_PATH = "/slack/events"  # the URLs the README tells operators to configure and probe
HEALTH_PATH = "/healthz"
START_TIMEOUT = 20.0
DELIVERY = {"retry_max_seconds": 2}  # short backoff, so outages in tests cost seconds, not minutes
# Settings serve reads from its environment; the test's own values must not leak into the bot.
OWN_SETTINGS = ("SLACK_", "MIGRATE_BOT_", "DATABASE_URL", "HOST", "PORT", "TARGET_DATABASE_URL")
T = TypeVar("T")


def serve_config(tmp_path: Path, migrations: Path, delivery: dict[str, Any] | None = DELIVERY) -> Path:
    """The in-process tests' config (production, their roles, example migrations), plus ``delivery``."""
    path = write_config(tmp_path, migrations)
    if delivery is not None:
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "delivery": delivery}))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(probe: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
    """Wait until ``probe()`` is truthy (for state nobody signals, like the bot's database)."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(every)
    return result


class BotStore:
    """The bot's SQLite store, read from the test process; the bot may be dead or writing meanwhile."""

    def __init__(self, url: str) -> None:
        # NullPool: no connection (and no read snapshot) outlives a query
        self.engine = create_engine(url, poolclass=NullPool)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(text(sql), params).mappings()]

    def plan(self, plan_id: int) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM plans WHERE id = :id", id=plan_id)
        return found[0] if found else None

    def plan_id(self, file_name: str) -> int | None:
        found = self.rows("SELECT id FROM plans WHERE file_name = :f ORDER BY id DESC", f=file_name)
        return int(found[0]["id"]) if found else None

    def approvals(self, plan_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM approvals WHERE plan_id = :id ORDER BY id", id=plan_id)

    def outbox(self, plan_id: int | None = None) -> list[dict[str, Any]]:
        if plan_id is None:
            return self.rows("SELECT * FROM outbox ORDER BY id")
        return self.rows("SELECT * FROM outbox WHERE plan_id = :id ORDER BY id", id=plan_id)


class ServeProcess:
    """One bot deployment: a store, a config and a log directory; ``start`` may run it again after a
    ``kill``, on a fresh port, so a test restarts "the same bot" as an operator would."""

    def __init__(self, workdir: Path, fake: FakeSlack, config: Path) -> None:
        self.workdir = workdir
        self.fake = fake
        self.config = config
        self.database_url = f"sqlite:///{workdir}/state.db"
        self.store = BotStore(self.database_url)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + EVENTS_PATH

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
        return {
            **env,
            "SLACK_BOT_TOKEN": self.fake.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.fake.api_url,
            "DATABASE_URL": self.database_url,
            "MIGRATE_BOT_CONFIG": str(self.config),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",  # every log line is on disk before a SIGKILL
            # this checkout's code, whatever the virtualenv's editable install points at
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }

    def start(self, timeout: float = START_TIMEOUT) -> ServeProcess:
        """Run ``python -m bot.cli serve`` and wait until GET /healthz answers; fail with the log if not."""
        assert not self.running, "serve is already running"
        self.port = free_port()
        log = self.workdir / f"serve-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"],
                env=self.environment(),
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for pytest is not also the bot's
            )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if (code := self.process.poll()) is not None:
                raise AssertionError(
                    f"serve exited with {code} before answering {HEALTH_PATH}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"serve did not answer {HEALTH_PATH} within {timeout} s:\n{self.log()}")
            time.sleep(0.1)
        return self

    def healthy(self) -> bool:
        """GET /healthz answers 200 (a dead or still starting bot does not)."""
        try:
            with urllib.request.urlopen(self.base_url + HEALTH_PATH, timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> int | None:
        """SIGKILL: no handler, no cleanup, requests in flight die with it. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=10)

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, as an orchestrator stops it; a bot that does not exit in time is killed and fails."""
        assert self.process is not None, "serve was never started"
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"serve ignored SIGTERM for {timeout} s:\n{self.log()}") from None

    def log(self) -> str:
        """Every run's output, oldest first."""
        parts = [f"--- {path.name} ---\n{path.read_text(errors='replace')}" for path in self.logs]
        return "\n".join(parts) or "(serve was never started)"

    # --- what Slack sends ------------------------------------------------------------------------
    def send(self, body: str, **headers: str) -> tuple[int, str]:
        """POST a body to /slack/events signed with the app's signing secret, as Slack does."""
        return post(self.url, body, {**signed_headers(body, SECRET), **headers})

    def command(self, text: str, *, user: str = AUTHOR, response: str = "default") -> tuple[int, str]:
        body = slash_command_body(
            text, user_id=user, channel_id=CHANNEL, response_url=self.fake.response_url(response)
        )
        return self.send(body)

    def click(self, action_id: str, plan_id: int, *, user: str, response: str = "click") -> tuple[int, str]:
        """A button on the plan's message, which exists only once the plan was posted."""
        plan = self.store.plan(plan_id)
        assert plan and plan["message_ts"], f"plan #{plan_id} has no message to click on: {plan}"
        return self.press(
            action_id, str(plan_id), user=user, channel=CHANNEL, ts=plan["message_ts"], response=response
        )

    def press(
        self, action_id: str, value: str, *, user: str, channel: str, ts: str, response: str = "click"
    ) -> tuple[int, str]:
        """Any button: one of a message posted in ``channel`` at ``ts`` (a page in a direct message …)."""
        body = block_actions_body(
            user_id=user,
            action_id=action_id,
            value=value,
            channel_id=channel,
            message_ts=ts,
            response_url=self.fake.response_url(response),
        )
        return self.send(body)


@contextmanager
def serve_process(workdir: Path, fake: FakeSlack, config: Path) -> Iterator[ServeProcess]:
    """A bot that is dead when the test ends, pass or fail; its log and what Slack saw are printed
    at teardown, which pytest shows next to a failure."""
    bot = ServeProcess(workdir, fake, config)
    try:
        yield bot
    finally:
        bot.kill()
        print(f"serve log:\n{bot.log()}\n\nSlack saw:\n{fake.summary()}")
