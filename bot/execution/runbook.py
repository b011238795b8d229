"""Running a command of the procedure (a runbook entry, pg_dump, pg_restore): no shell, bounded in time.

The command gets its own process group, so a timeout or a cancellation stops everything it started, not
just the first process. What it printed comes back trimmed and redacted: a runbook script may echo a
token, and pg_dump may print its connection string.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.execution.errors import StepCancelled, StepFailed, StepTimeout
from bot.execution.output import shown

POLL_SECONDS = 0.25
# Every tool runs under this guard, in a process group of its own: if the bot dies (SIGKILL leaves it no
# time to stop anything), the guard kills the group, so no pg_dump or pg_restore of a dead bot keeps
# running beside the retry of its step. The guard exits as the tool did (127 when it cannot start).
GUARD = """
import os, signal, subprocess, sys
bot, argv = int(sys.argv[1]), sys.argv[2:]
try:
    tool = subprocess.Popen(argv)
except OSError as err:
    print(f"could not start {argv[0]}: {err}", flush=True)
    os._exit(127)
while True:
    try:
        code = tool.wait(timeout=0.5)
        os._exit(code if code >= 0 else 128 - code)
    except subprocess.TimeoutExpired:
        if os.getppid() != bot:
            os.killpg(0, signal.SIGKILL)
"""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    output: str  # stdout and stderr interleaved, trimmed and redacted
    duration_seconds: float


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    check: bool = True,
    cancelled: Callable[[], bool] | None = None,
    watch: Callable[[float], None] | None = None,
) -> CommandResult:
    """Run ``argv`` (``env`` is added to the bot's environment) and wait at most ``timeout`` seconds.

    ``watch`` is called with the seconds elapsed about four times a second while the command runs.
    Raises StepTimeout or StepCancelled (the process group killed), and StepFailed when the command
    cannot start or, with ``check``, exits non-zero; each message carries the command's trimmed output.
    """
    name = os.path.basename(argv[0])
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", GUARD, str(os.getpid()), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
    except OSError as err:
        raise StepFailed(f"{name} could not start: {shown(str(err), secrets)}") from None
    try:
        while True:
            try:
                out, _ = proc.communicate(timeout=POLL_SECONDS)  # all of it: a retry loses nothing
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed >= timeout:
                    raise StepTimeout(f"{name} did not finish within {timeout:g} s") from None
                if cancelled and cancelled():
                    raise StepCancelled(f"{name} stopped: the run was cancelled") from None
                if watch:
                    watch(elapsed)
    except StepFailed as err:
        raise type(err)(_with_output(err.message, _stop(proc), secrets)) from None
    except BaseException:
        _stop(proc)
        raise
    output = shown(out.decode(errors="replace"), secrets)
    result = CommandResult(tuple(argv), proc.returncode, output, time.monotonic() - started)
    if check and proc.returncode != 0:
        raise StepFailed(_with_output(f"{name} exited with code {proc.returncode}", output, ()))
    return result


def _stop(proc: subprocess.Popen[bytes]) -> str:
    """Kill the command's process group; what it printed until then."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    return out.decode(errors="replace")


def _with_output(message: str, output: str, secrets: Sequence[str]) -> str:
    output = shown(output, secrets)
    return f"{message}:\n{output}" if output else message
