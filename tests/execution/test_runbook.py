"""Runbook commands: no shell, output captured and redacted, a timeout kills the whole process group."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bot.execution.errors import StepCancelled, StepFailed, StepTimeout
from bot.execution.output import OUTPUT_LIMIT
from bot.execution.runbook import run_command


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_output_of_both_streams_and_the_exit_code_come_back() -> None:
    result = run_command(python("import sys; print('out'); print('err', file=sys.stderr)"), timeout=10)
    assert result.exit_code == 0
    assert "out" in result.output and "err" in result.output
    assert result.duration_seconds > 0


def test_arguments_reach_the_command_as_they_are_without_a_shell() -> None:
    result = run_command(python("import sys; print(sys.argv[1])", "$HOME; echo injected"), timeout=10)
    assert result.output == "$HOME; echo injected"


def test_the_environment_given_is_added_to_the_bots() -> None:
    code = "import os; print(os.environ['STEP'], bool(os.environ.get('PATH')))"
    assert (
        run_command(python(code), timeout=10, env={"STEP": "maintenance_on"}).output == "maintenance_on True"
    )


def test_a_failing_command_raises_with_its_output_redacted() -> None:
    code = "print('connecting with password=hunter22 and token xyzzy-secret'); raise SystemExit(3)"
    with pytest.raises(StepFailed) as failed:
        run_command(python(code), timeout=10, secrets=["xyzzy-secret"])
    message = failed.value.message
    assert "exited with code 3" in message
    assert "connecting with" in message
    assert "hunter22" not in message and "xyzzy-secret" not in message


def test_a_non_zero_exit_is_returned_when_not_checked() -> None:
    assert run_command(python("raise SystemExit(2)"), timeout=10, check=False).exit_code == 2


def test_a_command_that_cannot_start_raises() -> None:
    with pytest.raises(StepFailed, match="could not start"):
        run_command(["/nonexistent/maintenance.sh", "on"], timeout=10)


def test_long_output_is_trimmed_keeping_both_ends() -> None:
    code = "print('first line'); print('x' * 100000); print('last line')"
    output = run_command(python(code), timeout=10).output
    assert len(output) < OUTPUT_LIMIT + 100
    assert output.startswith("first line") and output.endswith("last line")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_timeout_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(StepTimeout, match="did not finish within 1 s") as timed_out:
        run_command(python(code), timeout=1)
    assert time.monotonic() - started < 5
    assert "started" in timed_out.value.message
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_cancelling_stops_the_command_and_watch_hears_the_time() -> None:
    ticks: list[float] = []
    with pytest.raises(StepCancelled):
        run_command(
            python("import time; time.sleep(60)"),
            timeout=30,
            cancelled=lambda: len(ticks) >= 2,
            watch=ticks.append,
        )
    assert ticks == sorted(ticks) and ticks[0] > 0
