"""Runs at a set time: ``/migrate schedule 12 2026-11-28T02:00`` (UTC), or ``next-window``.

A schedule is a row (what was asked, and what became of it) and two persistent jobs (``bot.jobs``): a
notice ``execution.schedule_notice_minutes`` before, in the plan's thread and for the environment's
stakeholders, then the run of the plan's remaining steps. At its time the run checks again everything
that may have changed since (a freeze, the window, the approvals, the file's bytes), and runs, or
records why it did not. A run whose time passed while no bot ran is never run late: it is missed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import timeline
from bot.approvals import approval_status, expire_if_due
from bot.config import EnvironmentConfig
from bot.deps import Deps, Service
from bot.errors import InvalidState, UserError
from bot.execution.freeze import ChannelMessage, Freezes
from bot.execution.runner import RUNNABLE, Order, Runner
from bot.execution.windows import check_window, describe, in_window, needs_window, next_window, utc_label
from bot.jobs import MISFIRE_GRACE_SECONDS, Jobs, services
from bot.markup import mention, quote, quote_message
from bot.plans import environment, get_plan, verify_bytes
from bot.states import PlanState
from storage.models import SCHEDULE_WAITING, PlanRecord, ScheduleRecord, aware

NEXT_WINDOW = "next-window"


class ScheduleState(StrEnum):
    SCHEDULED = SCHEDULE_WAITING  # its jobs wait in the store
    RUNNING = "running"  # its time came
    DONE = "done"  # the run happened: the plan's state says how it went
    SKIPPED = "skipped"  # refused at its time: ``outcome`` says why
    FAILED = "failed"  # stopped by an error of the bot's own (its log has it)
    CANCELLED = "cancelled"
    REPLACED = "replaced"  # by a later ``schedule`` of the same plan
    MISSED = "missed"  # no bot ran at its time


def run_job_id(plan_id: int) -> str:
    return f"scheduled-run-{plan_id}"


def notice_job_id(plan_id: int) -> str:
    return f"scheduled-notice-{plan_id}"


def parse_when(text: str) -> datetime | str:
    """A time as typed: ``next-window``, or ISO 8601 (``2026-11-28T02:00``), UTC unless it says otherwise."""
    text = text.strip()
    if text == NEXT_WINDOW:
        return NEXT_WINDOW
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"`{text}` is not a time: give one like `2026-11-28T02:00` (UTC) or `{NEXT_WINDOW}`"
        ) from None
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    """In UTC, as the store keeps every time (SQLite keeps a time's digits, not its offset)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def scheduler() -> Jobs:
    """This process's scheduler, which stores jobs for the leader to run."""
    jobs = services().jobs
    if jobs is None:
        raise UserError(
            "this process has no scheduler to keep a scheduled run in; schedule it from Slack, "
            "where `migrate-bot serve` runs the scheduled jobs"
        )
    return jobs


class Schedules(Service):
    def __init__(self, deps: Deps, runner: Runner) -> None:
        super().__init__(deps)
        self.runner = runner

    @staticmethod
    def waiting(session: Session, plan_id: int) -> ScheduleRecord | None:
        """The plan's scheduled run still to come, if any."""
        return session.scalars(
            select(ScheduleRecord).where(
                ScheduleRecord.plan_id == plan_id, ScheduleRecord.state == ScheduleState.SCHEDULED.value
            )
        ).first()

    # --- requests ---------------------------------------------------------------------------------------

    def schedule(
        self, plan_id: int | str, *, user: str, at: datetime | str, operator: bool = False
    ) -> ScheduleRecord:
        """Run what is left of an approved plan at ``at`` (a time, or ``next-window``), replacing a run
        scheduled earlier. Who may run it may schedule it; ``operator``: the CLI, as for a run."""
        jobs = scheduler()
        with self.db.session() as session:
            plan_id = get_plan(session, plan_id).id
        self.runner.check_runner(plan_id, user, operator=operator)
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            now = self.clock()
            run_at = self._run_at(session, plan, at, now)
            earlier = self.waiting(session, plan.id)
            if earlier is not None:
                earlier.state = ScheduleState.REPLACED.value
                earlier.outcome = f"replaced by a run at {utc_label(run_at)}"
                session.flush()
            record = ScheduleRecord(
                plan_id=plan.id, run_at=run_at, by=user, state=ScheduleState.SCHEDULED.value
            )
            session.add(record)
            number = plan.id  # a failed flush expires the plan: its id is read before
            try:
                session.flush()
            except IntegrityError:  # scheduled by someone else in the same moment
                raise InvalidState(f"plan #{number} was scheduled a moment ago by someone else") from None
            self._tell(
                session,
                plan,
                actor=user,
                kind="run_scheduled",
                message=f"run scheduled for {utc_label(run_at)}",
                news=self._scheduled_news(session, plan, record, earlier),
                data={"schedule": record.id, "replaced": earlier.id if earlier else None},
            )
        notice_at = run_at - timedelta(minutes=self.config.policy.execution.schedule_notice_minutes)
        jobs.add(
            announce_scheduled, job_id=notice_job_id(plan_id), run_at=max(notice_at, now), args=(plan_id,)
        )
        jobs.add(run_scheduled, job_id=run_job_id(plan_id), run_at=run_at, args=(plan_id,))
        return record

    def _run_at(self, session: Session, plan: PlanRecord, at: datetime | str, now: datetime) -> datetime:
        """When the plan may run as asked; refuses what could not run then, saying why."""
        state = PlanState(plan.state)
        if state not in RUNNABLE:
            raise InvalidState(f"plan #{plan.id} is {state.label}; only an approved plan can be scheduled")
        verify_bytes(plan)
        if not self.runner.remaining(session, plan):
            raise InvalidState(f"every step of plan #{plan.id} is done")
        env = environment(self.config, plan.environment)
        run_at = self._moment(env, at, now)
        why = needs_window(self.config, plan)
        if why and env.windows and not in_window(env, run_at):
            raise InvalidState(
                f"{utc_label(run_at)} is outside {env.name}'s maintenance windows ({describe(env)}) and plan "
                f"#{plan.id} needs one ({why}); `/migrate schedule {plan.id} {NEXT_WINDOW}` takes the next"
            )
        expires = approval_status(self.config, plan).expires_at
        if state is PlanState.APPROVED and run_at >= expires:
            raise InvalidState(
                f"plan #{plan.id}'s approvals expire {utc_label(expires)}, before {utc_label(run_at)}: "
                "schedule it earlier, or plan it again nearer the time"
            )
        return run_at

    @staticmethod
    def _moment(env: EnvironmentConfig, at: datetime | str, now: datetime) -> datetime:
        moment = parse_when(at) if isinstance(at, str) else as_utc(at)
        if isinstance(moment, str):  # the one word parse_when gives back: next-window
            opens = next_window(env, now)
            if opens is None:
                raise UserError(
                    f"{env.name} has no maintenance windows (environments.{env.name}.windows): "
                    "give a time like `2026-11-28T02:00`"
                )
            return opens
        if moment <= now:
            raise UserError(f"{utc_label(moment)} has passed (it is {utc_label(now)}): give a time to come")
        return moment

    def _scheduled_news(
        self, session: Session, plan: PlanRecord, record: ScheduleRecord, earlier: ScheduleRecord | None
    ) -> str:
        env = environment(self.config, plan.environment)
        text = f"🗓️ {mention(record.by)} scheduled the run of plan #{plan.id} for {utc_label(record.run_at)}"
        if earlier is not None:
            text += f", in place of the run at {utc_label(aware(earlier.run_at))}"
        text += f". `/migrate schedule {plan.id} cancel` cancels it."
        if env.stakeholders_channel:
            minutes = self.config.policy.execution.schedule_notice_minutes
            text += f" <#{env.stakeholders_channel}> hears of it {minutes:g} minutes before."
        frozen = Freezes.current(session, env.name)
        if frozen is not None:
            text += f"\n⚠️ {env.name} is frozen now: this run starts only if it is unfrozen by then."
        return text

    def cancel(self, plan_id: int | str, *, user: str, operator: bool = False) -> ScheduleRecord:
        """Cancel the plan's scheduled run; who may run the plan may, and who scheduled it."""
        jobs = scheduler()
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            waiting = self.waiting(session, plan.id)
        if waiting is None:
            raise InvalidState(f"plan #{plan.id} has no scheduled run")
        if user != waiting.by:
            self.runner.check_runner(plan.id, user, operator=operator)
        with self.db.session() as session:
            record = self.waiting(session, plan.id)
            if record is None:  # it started, or was cancelled, meanwhile
                raise InvalidState(f"plan #{plan.id} has no scheduled run any more")
            record.state, record.outcome = ScheduleState.CANCELLED.value, f"cancelled by {user}"
            when = utc_label(aware(record.run_at))
            self._tell(
                session,
                get_plan(session, plan.id),
                actor=user,
                kind="schedule_cancelled",
                message=f"the run scheduled for {when} is cancelled",
                news=f"🗓️ {mention(user)} cancelled the run scheduled for {when}.",
                data={"schedule": record.id},
            )
        jobs.remove(notice_job_id(plan.id))
        jobs.remove(run_job_id(plan.id))
        return record

    # --- the jobs -----------------------------------------------------------------------------------------

    def announce_due(self, plan_id: int) -> ChannelMessage | None:
        """The notice before a scheduled run: in the plan's thread, and what its environment's stakeholders
        channel is owed (kept on the schedule as ``notice``). None without a run waiting or a channel."""
        with self.db.session() as session:
            due = self.waiting(session, plan_id)
            if due is None or due.noticed_at is not None:
                return None
            plan = get_plan(session, plan_id)
            env = environment(self.config, plan.environment)
            now = self.clock()
            minutes = max(0, round((aware(due.run_at) - now).total_seconds() / 60))
            text = (
                f"⏰ In {minutes} minutes, at {utc_label(aware(due.run_at))}, migrate-bot runs "
                f"`{quote(plan.file_name)}` on {env.name} (plan #{plan.id}, scheduled by {mention(due.by)})."
            )
            why = needs_window(self.config, plan)
            if why:
                text += f" Expect downtime: {why}."
            frozen = Freezes.current(session, env.name)
            if frozen is not None:
                text += f"\n⚠️ {env.name} is frozen: the run starts only if it is unfrozen by then."
            due.noticed_at = now
            self.outbox.thread(session, plan, text)
            if not env.stakeholders_channel:
                return None
            due.notice = text
            self.outbox.channel(session, env.stakeholders_channel, text, plan_id=plan.id)
            return ChannelMessage(env.stakeholders_channel, text)

    def run_due(self, plan_id: int) -> ScheduleRecord | None:
        """The scheduled run's time came: check again what may have changed since, then run the plan's
        remaining steps. None when no run waits (cancelled or replaced since its job was stored)."""
        with self.db.session() as session:
            due = self.waiting(session, plan_id)
            if due is None:
                return None
            due.state = ScheduleState.RUNNING.value
        try:
            state = self.runner.execute(self._start(due))
        except UserError as refusal:  # refused before any step started
            return self._end(due, ScheduleState.SKIPPED, str(refusal))
        except Exception:
            self._end(due, ScheduleState.FAILED, "the bot failed while it ran (its log says why)")
            raise
        return self._end(due, ScheduleState.DONE, f"ran: plan #{plan_id} is {state.label}")

    def _start(self, due: ScheduleRecord) -> Order:
        """The run ordered now, as the runner orders it, once what it does not check itself passed too
        (the approvals' expiry, a freeze, the window); the thread hears that it starts."""
        now = self.clock()
        with self.db.session() as session:  # an overdue plan expires, whatever follows
            expire_if_due(session, self.config, get_plan(session, due.plan_id), now, self.outbox)
        with self.db.session() as session:
            plan = get_plan(session, due.plan_id)
            Freezes.check_not_frozen(session, plan.environment)
            check_window(self.config, plan, now, user=due.by)
        order = self.runner.order_run(due.plan_id, user=due.by, what="all", operator=True)
        with self.db.session() as session:
            self._tell(
                session,
                get_plan(session, due.plan_id),
                actor="bot",
                kind="scheduled_run",
                message=f"scheduled run started (scheduled by {due.by} for {utc_label(aware(due.run_at))})",
                news=f"⏰ The run {mention(due.by)} scheduled starts now.",
                data={"schedule": due.id},
            )
        return order

    def _end(self, due: ScheduleRecord, state: ScheduleState, outcome: str) -> ScheduleRecord:
        with self.db.session() as session:
            record = session.get(ScheduleRecord, due.id)
            assert record is not None
            record.state, record.outcome = state.value, outcome
            if state is not ScheduleState.DONE:
                self._did_not_run(session, record)
            return record

    def _did_not_run(self, session: Session, record: ScheduleRecord) -> None:
        """On the plan's timeline and in its thread: why the scheduled run did not happen, and what next."""
        when = utc_label(aware(record.run_at))
        self._tell(
            session,
            get_plan(session, record.plan_id),
            actor="bot",
            kind=f"scheduled_run_{record.state}",
            message=f"the run scheduled for {when} did not run: {record.outcome}",
            news=f"⏭️ The run scheduled for {when} did not run: {quote_message(record.outcome or '')}\n"
            f"`/migrate schedule {record.plan_id} <time>` schedules it again.",
            data={"schedule": record.id},
        )

    def _tell(
        self,
        session: Session,
        plan: PlanRecord,
        *,
        actor: str,
        kind: str,
        message: str,
        news: str,
        data: dict[str, Any],
    ) -> None:
        """On the plan's timeline (``message``), and in its thread (``news``, bot markup)."""
        timeline.record(session, plan_id=plan.id, actor=actor, kind=kind, message=message, data=data)
        self.outbox.thread(session, plan, news)

    def missed(self) -> list[int]:
        """Scheduled runs whose time passed while no bot ran (beyond the jobs' grace): said so in their
        threads, never run late. For a new leader to call when it takes over."""
        late = self.clock() - timedelta(seconds=MISFIRE_GRACE_SECONDS)
        with self.db.session() as session:
            overdue = session.scalars(
                select(ScheduleRecord).where(
                    ScheduleRecord.state == ScheduleState.SCHEDULED.value, ScheduleRecord.run_at < late
                )
            ).all()
            for record in overdue:
                record.state, record.outcome = ScheduleState.MISSED.value, "no bot was running at its time"
                self._did_not_run(session, record)
            return [r.plan_id for r in overdue]


def run_scheduled(plan_id: int) -> None:
    """The job at a scheduled run's time."""
    services().schedules.run_due(plan_id)


def announce_scheduled(plan_id: int) -> None:
    """The job ``schedule_notice_minutes`` before a scheduled run."""
    services().schedules.announce_due(plan_id)
