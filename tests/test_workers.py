"""The work path's pools: never refusing work, saying how much waits, and processes of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from bot.workers import Priority, ProcessPool, ThreadPool


def test_a_pool_never_refuses_work_and_says_how_much_waits() -> None:
    release = threading.Event()
    pool = ThreadPool("test", 2, context=release)
    futures = [pool.submit(lambda event: event.wait(5)) for _ in range(2)]
    assert pool.waiting == 1  # both threads busy: the next job waits behind one
    queued = pool.submit(lambda _: "done")
    assert pool.waiting == 2
    release.set()
    assert queued.result(timeout=5) == "done" and all(f.result(timeout=5) for f in futures)
    assert pool.shutdown(timeout=1) and pool.waiting == 0


def _context(tag: str) -> dict[str, Any]:
    return {"tag": tag, "pid": os.getpid()}


def _where(context: dict[str, Any], *, x: int) -> tuple[str, int, int, int]:
    return context["tag"], context["pid"], os.getpid(), x


def _die(context: dict[str, Any]) -> None:
    os._exit(1)


def test_a_process_pool_runs_jobs_in_processes_that_built_their_own_context() -> None:
    pool = ProcessPool("test", 1, _context, ("built there",), priority=Priority(niceness=5, idle=True))
    try:
        tag, built_in, ran_in, x = pool.submit(_where, x=3).result(timeout=60)
        assert (tag, x) == ("built there", 3) and built_in == ran_in != os.getpid()
        with pytest.raises(BrokenProcessPool):  # a process that dies loses its job…
            pool.submit(_die).result(timeout=60)
        assert pool.submit(_where, x=4).result(timeout=60)[3] == 4  # …and the pool starts again
    finally:
        pool.shutdown(timeout=5)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return True


def test_pool_processes_do_not_outlive_a_killed_parent() -> None:
    script = (
        "from bot.workers import ProcessPool\n"
        "from tests.test_workers import _context, _where\n"
        "pool = ProcessPool('test', 1, _context, ('x',))\n"
        "print(pool.submit(_where, x=1).result(timeout=60)[2], flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(child)
    finally:
        parent.kill()
