"""Scheduled runs: what may be scheduled and when, the notice before, the checks made again at the run's
time, and the real scheduler firing them: a run that happens, and one a freeze stopped meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import jobs as bot_jobs
from bot.app import Services
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.freeze import ChannelMessage, Freezes
from bot.execution.schedule import (
    NEXT_WINDOW,
    Schedules,
    ScheduleState,
    notice_job_id,
    run_job_id,
    scheduler,
)
from bot.execution.steps import StepState
from bot.jobs import MISFIRE_GRACE_SECONDS, Jobs
from bot.plans import get_plan
from bot.states import PlanState
from storage.models import OutboxRecord, ScheduleRecord, StepRecord
from tests.clock import Clock
from tests.execution.test_runner import AUTHOR, approved
from tests.execution.test_windows import HIGH, LOW, make_services, utc

FRIDAY = utc("2026-11-27T10:00")
SATURDAY_WINDOW = utc("2026-11-28T02:00")


def start(tmp_path: Path, clock: Clock) -> tuple[Services, Jobs, Schedules]:
    """Services with this process's scheduler, installed for the job functions as ``serve`` does."""
    services = make_services(tmp_path, clock)
    services.jobs = Jobs(services)
    bot_jobs.install(services)
    return services, services.jobs, Schedules(services.runner.deps, services.runner)


@pytest.fixture
def friday(tmp_path: Path) -> Iterator[tuple[Services, Jobs, Schedules, Clock]]:
    """A Friday morning, outside production's weekend windows; the scheduler only stores jobs."""
    clock = Clock()
    clock.now = FRIDAY
    services, jobs, schedules = start(tmp_path, clock)
    yield services, jobs, schedules, clock
    jobs.shutdown()


def thread(services: Services, plan_id: int) -> list[str]:
    with services.db.session() as session:
        rows = session.scalars(
            select(OutboxRecord).where(OutboxRecord.plan_id == plan_id, OutboxRecord.kind == "thread")
        )
        return [row.payload["text"] for row in rows]


def schedules_of(services: Services, plan_id: int) -> list[tuple[str, datetime]]:
    with services.db.session() as session:
        rows = session.scalars(
            select(ScheduleRecord).where(ScheduleRecord.plan_id == plan_id).order_by(ScheduleRecord.id)
        )
        return [(r.state, r.run_at.replace(tzinfo=UTC)) for r in rows]


def test_a_run_is_scheduled_only_for_a_time_it_could_run_then(
    friday: tuple[Services, Jobs, Schedules, Clock],
) -> None:
    services, jobs, schedules, _ = friday
    plan_id = approved(services, LOW, "production")  # the standard procedure: it needs a window
    pending = services.planner.submit(
        env_name="staging", file_arg=HIGH, author=AUTHOR, typed_in="C0HERE"
    ).plan
    assert pending is not None
    with pytest.raises(InvalidState, match="is awaiting approval; only an approved plan can be scheduled"):
        schedules.schedule(pending.id, user="U0TL", at=NEXT_WINDOW)
    with pytest.raises(UserError, match=r"2026-11-27 09:00 UTC has passed \(it is 2026-11-27 10:00 UTC\)"):
        schedules.schedule(plan_id, user="U0TL", at="2026-11-27T09:00")
    with pytest.raises(UserError, match="`tomorrow` is not a time"):
        schedules.schedule(plan_id, user="U0TL", at="tomorrow")
    with pytest.raises(InvalidState) as outside:
        schedules.schedule(plan_id, user="U0TL", at="2026-11-27T12:00")
    assert str(outside.value) == (
        "2026-11-27 12:00 UTC is outside production's maintenance windows (Sat 02:00-06:00, Sun 02:00-06:00 "
        f"UTC) and plan #{plan_id} needs one (its standard procedure puts the application in maintenance "
        f"mode); `/migrate schedule {plan_id} next-window` takes the next"
    )
    with pytest.raises(InvalidState, match=r"approvals expire 2026-12-04 10:00 UTC, before 2026-12-05 02:00"):
        schedules.schedule(plan_id, user="U0TL", at="2026-12-05T02:00")
    with pytest.raises(Forbidden, match="only Technical Lead or On Call may run"):
        schedules.schedule(plan_id, user="U0QA1", at=NEXT_WINDOW)

    first = schedules.schedule(plan_id, user="U0TL", at=NEXT_WINDOW)
    assert first.run_at == SATURDAY_WINDOW
    assert jobs.next_run(run_job_id(plan_id)) == SATURDAY_WINDOW
    assert jobs.next_run(notice_job_id(plan_id)) == SATURDAY_WINDOW - timedelta(minutes=60)
    second = schedules.schedule(plan_id, user="U0ONCALL", at="2026-11-29T03:30+01:00")  # Sunday, 02:30 UTC
    assert schedules_of(services, plan_id) == [
        ("replaced", SATURDAY_WINDOW),
        ("scheduled", utc("2026-11-29T02:30")),
    ]
    assert jobs.next_run(run_job_id(plan_id)) == second.run_at
    assert thread(services, plan_id)[-2:] == [
        f"🗓️ <@U0TL> scheduled the run of plan #{plan_id} for 2026-11-28 02:00 UTC. "
        f"`/migrate schedule {plan_id} cancel` cancels it. <#C0STAKE> hears of it 60 minutes before.",
        f"🗓️ <@U0ONCALL> scheduled the run of plan #{plan_id} for 2026-11-29 02:30 UTC, in place of the run "
        f"at 2026-11-28 02:00 UTC. `/migrate schedule {plan_id} cancel` cancels it. <#C0STAKE> hears of it "
        "60 minutes before.",
    ]

    with pytest.raises(Forbidden):
        schedules.cancel(plan_id, user="U0QA1")
    schedules.cancel(plan_id, user="U0TL")
    assert [state for state, _ in schedules_of(services, plan_id)] == ["replaced", "cancelled"]
    assert jobs.next_run(run_job_id(plan_id)) is None and jobs.next_run(notice_job_id(plan_id)) is None
    with pytest.raises(InvalidState, match="has no scheduled run"):
        schedules.cancel(plan_id, user="U0TL")
    assert schedules.run_due(plan_id) is None  # a job left behind finds nothing to run

    services.jobs = None  # the CLI: no scheduler
    with pytest.raises(UserError, match="no scheduler to keep a scheduled run in"):
        scheduler()


def test_the_notice_goes_to_the_thread_and_the_stakeholders_and_the_run_checks_the_window_again(
    friday: tuple[Services, Jobs, Schedules, Clock],
) -> None:
    services, _, schedules, clock = friday
    plan_id = approved(services, LOW, "production")
    schedules.schedule(plan_id, user="U0TL", at=NEXT_WINDOW)
    clock.now = SATURDAY_WINDOW - timedelta(minutes=60)
    notice = (
        f"⏰ In 60 minutes, at 2026-11-28 02:00 UTC, migrate-bot runs `{LOW}` on production (plan "
        f"#{plan_id}, scheduled by <@U0TL>). Expect downtime: its standard procedure puts the application in "
        "maintenance mode."
    )
    assert schedules.announce_due(plan_id) == ChannelMessage("C0STAKE", notice)
    assert schedules.announce_due(plan_id) is None  # once
    assert thread(services, plan_id)[-1] == notice
    with services.db.session() as session:
        assert Schedules.waiting(session, plan_id).notice == notice  # type: ignore[union-attr]

    clock.now = SATURDAY_WINDOW + timedelta(hours=4, minutes=1)  # the bot was late: the window closed
    record = schedules.run_due(plan_id)
    assert record is not None and record.state == ScheduleState.SKIPPED
    assert "production's maintenance windows are Sat 02:00-06:00" in (record.outcome or "")
    assert thread(services, plan_id)[-1].startswith(
        "⏭️ The run scheduled for 2026-11-28 02:00 UTC did not run:"
    )
    with services.db.session() as session:
        assert get_plan(session, plan_id).state == PlanState.APPROVED
        assert get_plan(session, plan_id).events[-1].kind == "scheduled_run_skipped"


def test_a_run_whose_file_changed_or_whose_time_passed_unseen_does_not_run(
    friday: tuple[Services, Jobs, Schedules, Clock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, jobs, schedules, clock = friday
    monkeypatch.setenv("TARGET_DSN", "postgresql://nobody@127.0.0.1:9/never-reached")
    plan_id = approved(services, LOW, "staging")  # zero downtime, Low: any time
    schedules.schedule(plan_id, user="U0TL", at="2026-11-27T12:00")
    migration = tmp_path / "migrations" / LOW
    migration.write_text(migration.read_text() + "\n-- edited\n")
    clock.now = utc("2026-11-27T12:00")
    record = schedules.run_due(plan_id)
    assert record is not None and record.state == ScheduleState.SKIPPED
    assert f"`{LOW}` changed since plan #{plan_id} was made" in (record.outcome or "")

    other = approved(services, HIGH, "staging")  # High: a window, Saturday night in Berlin
    schedules.schedule(other, user="U0TL", at=NEXT_WINDOW)
    jobs.remove(run_job_id(other))  # as when no bot ran at its time: the job's grace passed
    clock.now = utc("2026-11-28T21:00") + timedelta(seconds=MISFIRE_GRACE_SECONDS - 1)
    assert schedules.missed() == []  # still within the grace: the job may yet run
    clock.now += timedelta(seconds=2)
    assert schedules.missed() == [other]
    assert schedules_of(services, other) == [("missed", utc("2026-11-28T21:00"))]
    assert "did not run: no bot was running at its time" in thread(services, other)[-1]


@pytest.fixture
def live(
    tmp_path: Path, nchat_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Services, Jobs, Schedules]]:
    """The wall clock, a real target, and this process leading: jobs run when they come due."""
    monkeypatch.setenv("TARGET_DSN", nchat_dsn)
    services, jobs, schedules = start(tmp_path, Clock())
    jobs.lead()
    yield services, jobs, schedules
    jobs.shutdown()


def settled(services: Services, jobs: Jobs, plan_id: int, timeout: float = 120) -> ScheduleRecord:
    """The plan's latest schedule once its run happened or was refused (the leader's loop wakes the
    scheduler meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs.lead()
        with services.db.session() as session:
            record = session.scalars(
                select(ScheduleRecord)
                .where(ScheduleRecord.plan_id == plan_id)
                .order_by(ScheduleRecord.id.desc())
            ).first()
        if record is not None and record.state not in {ScheduleState.SCHEDULED, ScheduleState.RUNNING}:
            return record
        time.sleep(0.2)
    raise AssertionError(f"the scheduled run of plan #{plan_id} did not happen in {timeout} s")


def test_a_scheduled_run_fires_at_its_time_and_runs_the_remaining_steps(
    live: tuple[Services, Jobs, Schedules],
) -> None:
    services, jobs, schedules = live
    plan_id = approved(services, LOW, "staging")
    fires_at = services.clock() + timedelta(seconds=2)
    schedules.schedule(plan_id, user="U0TL", at=fires_at)
    with services.db.session() as session:
        assert session.scalar(select(StepRecord.id)) is None  # nothing ran when it was scheduled
    record = settled(services, jobs, plan_id)
    assert datetime.now(UTC) >= fires_at
    assert (record.state, record.outcome) == (ScheduleState.DONE, f"ran: plan #{plan_id} is monitoring")
    with services.db.session() as session:
        assert get_plan(session, plan_id).state == PlanState.MONITORING
        steps = services.runner.steps(session, plan_id)
    assert [s.step for s in steps] == ["backup", "verify_backup", "apply", "verify", "integrity_checks"]
    assert all(s.state == StepState.DONE and s.operator == "U0TL" for s in steps)
    news = thread(services, plan_id)
    assert any(text.startswith("⏰ In 0 minutes") for text in news)  # the notice, at once: too late for 60
    assert "⏰ The run <@U0TL> scheduled starts now." in news


def test_a_freeze_added_after_scheduling_stops_the_run_at_its_time(
    live: tuple[Services, Jobs, Schedules],
) -> None:
    services, jobs, schedules = live
    plan_id = approved(services, LOW, "staging")
    schedules.schedule(plan_id, user="U0TL", at=services.clock() + timedelta(seconds=1))
    Freezes(services.runner.deps).freeze("staging", user="U0ONCALL", reason="incident 4711")
    record = settled(services, jobs, plan_id)
    assert record.state == ScheduleState.SKIPPED
    assert record.outcome is not None and record.outcome.startswith("staging is frozen since ")
    assert record.outcome.endswith(
        "by <@U0ONCALL>: incident 4711; nothing runs there until `/migrate unfreeze staging`"
    )
    with services.db.session() as session:
        assert get_plan(session, plan_id).state == PlanState.APPROVED
        assert services.runner.steps(session, plan_id) == []
    news = thread(services, plan_id)
    assert "🧊 staging is frozen: this run starts only if it is unfrozen by then." in news
    assert (
        news[-1].startswith("⏭️ The run scheduled for") and "did not run: staging is frozen since" in news[-1]
    )


def test_ten_people_scheduling_at_once_leave_one_run_waiting(
    friday: tuple[Services, Jobs, Schedules, Clock],
) -> None:
    services, _, schedules, _ = friday
    plan_id = approved(services, LOW, "production")

    def ask(user: str) -> str:
        try:
            return schedules.schedule(plan_id, user=user, at=NEXT_WINDOW).state
        except InvalidState as err:  # the one loser of a race is told, never shown a crash
            return str(err)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(ask, ["U0TL", "U0ONCALL"] * 5))
    assert all(a == "scheduled" or "scheduled a moment ago by someone else" in a for a in answers), answers
    assert [state for state, _ in schedules_of(services, plan_id)].count("scheduled") == 1
