"""The image's HEALTHCHECK, run as Docker runs it, against ``migrate-bot serve`` in both of its modes.

No container engine here: the command is read from the Dockerfile and run by ``/bin/sh`` with the
image's PORT, against serve started as a process (HTTP mode; Socket Mode, whose WebSocket the fake
Slack refuses, so the bot keeps retrying as it does when Slack is away).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.slack.fake_api import APP_TOKEN, FakeSlack
from tests.slack.process import REPO, ServeProcess, serve_config, serve_process


def healthcheck_command() -> str:
    """The shell command of the Dockerfile's HEALTHCHECK instruction (after its options)."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK\s.*?\bCMD\s+(.+)$", dockerfile, re.MULTILINE)
    assert found, "the Dockerfile has no HEALTHCHECK … CMD"
    return found.group(1).strip()


def probe(port: int) -> int:
    """Docker's verdict: 0 healthy, 1 unhealthy; ``python`` is this interpreter, as in the image."""
    env = {
        **os.environ,
        "PORT": str(port),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    done = subprocess.run(["/bin/sh", "-c", healthcheck_command()], env=env, capture_output=True, timeout=10)
    return done.returncode


class SocketModeServe(ServeProcess):
    def environment(self) -> dict[str, str]:
        return {**super().environment(), "SLACK_APP_TOKEN": APP_TOKEN}


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])
def test_the_images_healthcheck_passes_while_serve_runs(
    socket_mode: bool, tmp_path: Path, fake_slack: FakeSlack, migrations: Path
) -> None:
    with serve_process(tmp_path, fake_slack, serve_config(tmp_path, migrations)) as bot:
        if socket_mode:
            bot.__class__ = SocketModeServe
        bot.start()
        assert probe(bot.port) == 0, bot.log()
        if socket_mode:
            fake_slack.wait_for("apps.connections.open")
            assert bot.send("{}")[0] >= 400  # nothing takes Slack's HTTP requests: Socket Mode
            assert probe(bot.port) == 0, bot.log()
        assert bot.stop() == 0
        assert probe(bot.port) == 1
