"""Persistent jobs: added by any process, run by the leader only, surviving a restart."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import Services, build_services
from bot.config import Settings, parse_config
from bot.jobs import Jobs

RAN: list[str] = []
DONE = threading.Event()


def record(tag: str) -> None:
    RAN.append(tag)
    DONE.set()


def services(tmp_path: Path) -> Services:
    (tmp_path / "migrations").mkdir(exist_ok=True)
    config = parse_config({"environments": {"development": {"migrations_dir": "migrations"}}}, tmp_path)
    return build_services(Settings(database_url=f"sqlite:///{tmp_path}/state.db"), config)


def wait_for(tag: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while tag not in RAN and time.monotonic() < deadline:
        DONE.wait(0.1)
        DONE.clear()
    return tag in RAN


def test_a_job_added_by_a_follower_runs_in_the_leader_only(tmp_path: Path) -> None:
    leader, follower = Jobs(services(tmp_path)), Jobs(services(tmp_path))
    try:
        leader.lead()
        follower.add(record, job_id="follower-job", args=("from a follower",))
        for _ in range(20):  # the leader's loop wakes its scheduler this often
            leader.lead()
            if wait_for("from a follower", 0.25):
                break
        assert RAN.count("from a follower") == 1
        assert leader.next_run("follower-job") is None  # a one-off job is gone once it ran
    finally:
        leader.shutdown()
        follower.shutdown()


def test_a_job_outlives_the_process_that_added_it(tmp_path: Path) -> None:
    first = Jobs(services(tmp_path))
    first.add(
        record, job_id="later", run_at=datetime.now(UTC) + timedelta(seconds=1), args=("after restart",)
    )
    first.shutdown()  # the bot stops before the job is due
    second = Jobs(services(tmp_path))
    try:
        second.lead()
        assert wait_for("after restart")
        # the scheduler removes a one-off job just after it starts it: shut down before that, APScheduler
        # would fail to (a thread's JobLookupError) and leave it in the store
        deadline = time.monotonic() + 5
        while second.next_run("later") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.next_run("later") is None
    finally:
        second.shutdown()
