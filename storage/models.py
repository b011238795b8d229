"""The bot's own state: plans, approvals, the append-only timeline and the outbox (SQLAlchemy 2.0 models).

No timestamp has a default here: ``storage.db.Database`` stamps them from its injected clock, so one
clock (the wall clock, or a test's) dates everything the bot stores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; every one was stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def passed(moment: datetime | None, now: datetime) -> bool:
    """Whether a stored time (None: never) has come by ``now``."""
    return moment is not None and aware(moment) <= now


# Timestamps the store fills from the Database's clock when a row is written without them.
STAMPED_ON_INSERT = ("created_at", "updated_at", "at", "read_at")
STAMPED_ON_UPDATE = ("updated_at",)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[object, object]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class PlanRecord(Base):
    """One migration file, planned for one environment: the exact bytes, what they do, and where it stands."""

    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_environment_file", "environment", "file_name", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment: Mapped[str] = mapped_column(String(100))
    file_name: Mapped[str] = mapped_column(String(500))
    file_path: Mapped[str] = mapped_column(Text)
    sql: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    # the git commit the file was read at ("": a migrations directory on the bot's host)
    source_commit: Mapped[str] = mapped_column(String(40), default="", server_default="")
    rollback_sql: Mapped[str] = mapped_column(Text)
    rollback_sha256: Mapped[str] = mapped_column(String(64))
    rollback: Mapped[dict[str, Any]]
    # a 10 MB file's analysis is 150 MB of JSON: read only by what uses it (a run, a rehearsal)
    analysis: Mapped[dict[str, Any]] = mapped_column(deferred=True)
    rollback_analysis: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)
    # what its message shows (bot.summary): redraws read this; None for plans stored before 0011
    summary: Mapped[dict[str, Any] | None]
    complexity: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(100))
    channel_id: Mapped[str | None] = mapped_column(String(50))
    message_ts: Mapped[str | None] = mapped_column(String(50))
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    # how it runs: {"forward": [segment…], "rollback": [segment…], "problem": why it cannot, or None}
    segments: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)  # read by runs and rehearsals
    procedure: Mapped[str | None] = mapped_column(String(20))  # chosen when the run starts
    abort_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    events: Mapped[list[EventRecord]] = relationship(
        back_populates="plan", order_by="EventRecord.id", cascade="all, delete-orphan"
    )
    approvals: Mapped[list[ApprovalRecord]] = relationship(
        back_populates="plan", order_by="ApprovalRecord.id", cascade="all, delete-orphan"
    )
    # read with the plan (its message shows the run): written by the runner directly
    steps: Mapped[list[StepRecord]] = relationship(order_by="StepRecord.id", lazy="selectin", viewonly=True)
    # read with the plan (a passing one fills the rehearsal its approvals may need)
    rehearsals: Mapped[list[RehearsalRecord]] = relationship(
        order_by="RehearsalRecord.id", lazy="selectin", viewonly=True
    )


class EventRecord(Base):
    """A timeline entry: who did what to a plan, when, with structured data for exports."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    plan: Mapped[PlanRecord] = relationship(back_populates="events")


class ApprovalRecord(Base):
    """One role (or review) signed off for the exact migration and rollback bytes it was shown.

    The unique (plan, slot) pair is what makes "a role is approved once" hold under concurrent clicks.
    """

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("plan_id", "slot", name="uq_approvals_plan_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    slot: Mapped[str] = mapped_column(String(100))  # the approver role or review it fills
    role: Mapped[str] = mapped_column(String(100))  # the role the approver acted as
    user_id: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    rollback_sha256: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(20))  # "slack", or "cli" for break-glass
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]

    plan: Mapped[PlanRecord] = relationship(back_populates="approvals")


class ActionRecord(Base):
    """A Slack interaction already handled: its key makes retries and double submissions no-ops."""

    __tablename__ = "actions"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    at: Mapped[datetime]


class OutboxRecord(Base):
    """A message the bot owes Slack, written in the transaction of the change it reports.

    Rows of one ``stream`` (a plan's message and thread, or one person) are delivered in order; ``key``
    makes an announcement that must exist once (a plan's post) unique.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_stream", "state", "stream", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), index=True)
    stream: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class GroupRecord(Base):
    """A Slack user group's members as last read, shared by the bot's processes (role checks)."""

    __tablename__ = "user_groups"

    group_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    members: Mapped[list[str]] = mapped_column(JSON)
    read_at: Mapped[datetime]


class StepRecord(Base):
    """One step of a plan's run (backup, apply …, rollback, restore): committed when it starts and
    when it ends, before either is announced, so a restart knows exactly what was running."""

    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    step: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    operator: Mapped[str] = mapped_column(String(100))
    output: Mapped[dict[str, Any]] = mapped_column(default=dict)  # evidence and details, redacted
    error: Mapped[str | None] = mapped_column(Text)
    message_ts: Mapped[str | None] = mapped_column(String(50))  # its line in the plan's thread
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


# APScheduler's job store, as its SQLAlchemyJobStore defines it: declared here so that Alembic owns it
# like every other table (the store's own "create if missing" then finds it).
JOBS_TABLE = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class FreezeRecord(Base):
    """A change freeze on an environment: nothing runs there from ``at`` until it is lifted. Kept once
    lifted, as the environment's freeze history (the timeline is a plan's)."""

    __tablename__ = "freezes"

    id: Mapped[int] = mapped_column(primary_key=True)
    environment: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    lifted_by: Mapped[str | None] = mapped_column(String(100))
    lifted_at: Mapped[datetime | None]


# One freeze in force per environment, whoever freezes it at the same moment.
Index(
    "uq_freezes_in_force",
    FreezeRecord.environment,
    unique=True,
    sqlite_where=FreezeRecord.lifted_at.is_(None),
    postgresql_where=FreezeRecord.lifted_at.is_(None),
)


class ScheduleRecord(Base):
    """A plan's remaining steps, to run at ``run_at`` (a persistent job), and what became of that run."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    run_at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))  # bot.execution.schedule.ScheduleState
    outcome: Mapped[str | None] = mapped_column(Text)  # why it did not run, or how the run ended
    notice: Mapped[str | None] = mapped_column(Text)  # what the stakeholders' channel was owed before it
    noticed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# A schedule's state while its run waits; one run waits per plan (scheduling it again replaces it).
SCHEDULE_WAITING = "scheduled"
Index(
    "uq_schedules_waiting",
    ScheduleRecord.plan_id,
    unique=True,
    sqlite_where=ScheduleRecord.state == SCHEDULE_WAITING,
    postgresql_where=ScheduleRecord.state == SCHEDULE_WAITING,
)


class RehearsalRecord(Base):
    """A rehearsal of a plan on a scratch copy (up, down, up): of the exact bytes it was run for."""

    __tablename__ = "rehearsals"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    rollback_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))  # queued, running, passed, failed, interrupted
    operator: Mapped[str] = mapped_column(String(100))
    rows: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)  # redacted
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[str | None] = mapped_column(Text)  # what it is doing now, for its line in the thread
    scratch_name: Mapped[str | None] = mapped_column(String(63))  # its scratch database, while it may exist
    runner: Mapped[str | None] = mapped_column(String(200))  # host:pid of the process running it
    message_ts: Mapped[str | None] = mapped_column(String(50))  # its line in the plan's thread
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


# A rehearsal's states while it is under way; one is under way per plan (ten clicks queue one).
REHEARSAL_UNDER_WAY = ("queued", "running")
Index(
    "uq_rehearsals_under_way",
    RehearsalRecord.plan_id,
    unique=True,
    sqlite_where=RehearsalRecord.state.in_(REHEARSAL_UNDER_WAY),
    postgresql_where=RehearsalRecord.state.in_(REHEARSAL_UNDER_WAY),
)


class MonitorRecord(Base):
    """The window after a plan's apply: its baseline, where it stands, and when it samples next. One per
    plan; every field a restarted leader needs to resume it is here."""

    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), unique=True)
    state: Mapped[str] = mapped_column(String(20))  # bot.monitor.window.WindowState
    baseline: Mapped[dict[str, Any]] = mapped_column(default=dict)  # metric -> {value, detail}
    # running counts the rules need: consecutive bad samples per rule, consecutive unknown ones
    streaks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the latest sample, for the live message
    worst: Mapped[dict[str, Any]] = mapped_column(default=dict)  # metric -> worst value seen
    samples: Mapped[int] = mapped_column(Integer, default=0)
    decision: Mapped[str | None] = mapped_column(Text)  # how it ended, or what it is waiting for
    message_ts: Mapped[str | None] = mapped_column(String(50))  # its live message in the plan's thread
    opened_at: Mapped[datetime | None]  # when apply succeeded: the window runs from here
    early_until: Mapped[datetime | None]  # the automatic-rollback part of the window
    ends_at: Mapped[datetime | None]
    next_sample_at: Mapped[datetime | None]
    # the post-migration checklist's reminders: [{"section", "at", "sent"}], and the next one's time
    reminders: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    next_reminder_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SampleRecord(Base):
    """One reading of every source and signal, and what the rules made of it."""

    __tablename__ = "monitor_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id"), index=True)
    taken_at: Mapped[datetime]
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)  # metric -> value or None (unknown)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # metric -> what was read, redacted
    verdict: Mapped[str] = mapped_column(String(20))  # ok, bad, unknown
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)  # the rules it broke, in words


class IncidentRecord(Base):
    """Something people must answer: a breach with its severity, a window that cannot tell (no data),
    or one opened by hand. Escalation reads and advances ``level`` and the deadlines, each change committed
    before its pings are owed, so a restart fires a missed ping once."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # breach, inconclusive, manual
    severity: Mapped[str | None] = mapped_column(String(2))  # P0-P3; None: a question, not a breach
    state: Mapped[str] = mapped_column(String(20))  # open, acknowledged, resolved
    reason: Mapped[str] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer, default=0)  # the escalation chain's level paged last
    paging_since: Mapped[datetime | None]  # its first page: the chain's delays count from it
    next_ping_at: Mapped[datetime | None]  # the next page (escalation or a repeat) while unacknowledged
    response_due_at: Mapped[datetime | None]  # the severity's response time
    decision_due_at: Mapped[datetime | None]  # the severity's rollback decision time
    decision_asked: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PageRecord(Base):
    """One page: a level of the chain (or all of them) told of an incident, and why."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(50))
    users: Mapped[list[str]] = mapped_column(JSON, default=list)
    why: Mapped[str] = mapped_column(String(30))  # opened, escalated, repeat, response_due, decision_due
    at: Mapped[datetime]


# An incident's states until it is resolved; one is unresolved per plan (a worse breach raises its severity).
INCIDENT_UNRESOLVED = ("open", "acknowledged")
Index(
    "uq_incidents_unresolved",
    IncidentRecord.plan_id,
    unique=True,
    sqlite_where=IncidentRecord.state.in_(INCIDENT_UNRESOLVED),
    postgresql_where=IncidentRecord.state.in_(INCIDENT_UNRESOLVED),
)
