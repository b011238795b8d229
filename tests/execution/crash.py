"""Killing a bot from outside: its CLI in a subprocess on a config and store in tmp, a client tool slowed
down so the bot can be caught in the middle of a step, and waits that say what never happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import Services, build_services
from bot.config import Settings, load_config
from tests.conftest import REPO

# How long ``wait_for`` waits before it fails: far more than a healthy bot needs to get there.
WAIT_SECONDS = 15


@dataclass(frozen=True)
class Bot:
    """A bot's config and store on disk: for its CLI in a subprocess, and for a restart in this one."""

    config_path: Path
    database_url: str
    env: dict[str, str]

    @classmethod
    def write(cls, tmp_path: Path, target_dsn: str, config: dict[str, Any]) -> Bot:
        """``config`` in tmp; its environments name ``TARGET_DSN``; the store is SQLite; no Slack."""
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        database_url = f"sqlite:///{tmp_path}/state.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
        env |= {
            "MIGRATE_BOT_CONFIG": str(config_path),
            "DATABASE_URL": database_url,
            "TARGET_DSN": target_dsn,
        }
        return cls(config_path, database_url, env)

    def services(self) -> Services:
        """What a (re)started bot builds first, from the same settings and config."""
        return build_services(Settings(database_url=self.database_url), load_config(self.config_path))

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``migrate-bot ARGS`` left running, in its own process group."""
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``migrate-bot ARGS`` to its end."""
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def slowed_tool(directory: Path, real: str, seconds: float) -> tuple[Path, Path]:
    """An executable that, the first time only, writes its pid and sleeps ``seconds`` before it becomes
    ``real`` (exec: one process throughout, so the pid is the tool's); and the file the pid goes to."""
    wrapper, pid_file = directory / f"slow_{Path(real).name}", directory / f"{Path(real).name}.pid"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, time\n"
        f"if not os.path.exists({str(pid_file)!r}):\n"
        f"    with open({str(pid_file)!r} + '.tmp', 'w') as f:\n"
        "        f.write(str(os.getpid()))\n"
        f"    os.rename({str(pid_file)!r} + '.tmp', {str(pid_file)!r})\n"
        f"    time.sleep({seconds})\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    return wrapper, pid_file


def wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[str] | None = None) -> None:
    """Until ``ready()``; fails saying what never happened, with the bot's output if it ended first."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the bot exited ({proc.returncode}) before {what}:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            pytest.fail(f"still not {what} after {WAIT_SECONDS} s")
        time.sleep(0.1)


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the bot's own process: no handler, no ``finally``, nothing said on the way out. What it
    started in process groups of their own (``run_command``) is not killed with it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for a PID 1 that may never reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return not stat.parent.parent.exists()  # no procfs: kill(0) is all there is
