"""A plan's whole story as the store holds it: the facts every export is drawn from, gathered once.

Exports are pure functions of a ``Story``: nothing here reads a clock, and everything is sorted (events by
time then id), so the same stored data gives the same bytes on every run. Every string in it is redacted,
with the target databases' passwords masked verbatim as well: a password pasted into a reason or printed by
a runbook command matches no pattern, but the bot knows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import BotConfig
from bot.execution.steps import StepKind
from bot.monitor.rules import ORDER, Verdict
from bot.plans import get_plan
from bot.redact import redact
from bot.secrets import known_secrets
from bot.sql.model import Level
from bot.states import PlanState
from storage.models import (
    EventRecord,
    IncidentRecord,
    MonitorRecord,
    PageRecord,
    PlanRecord,
    SampleRecord,
    aware,
)

# Event kinds that record a decision (someone's, or the bot's by the policy), for the report's own table.
DECISIONS = frozenset(
    {
        "approval",
        "approved",
        "rejected",
        "changes_requested",
        "run_started",
        "run_resumed",
        "run_scheduled",
        "schedule_cancelled",
        "abort_requested",
        "rolling_back",
        "incident_opened",
        "incident_raised",
        "incident_acknowledged",
        "incident_resolved",
        "restored",
        "completed",
    }
)
# Event kinds that end a plan's story for now: the summary's end.
ENDINGS = frozenset(
    {"completed", "rolled_back", "rollback_failed", "restored", "run_cancelled", "rejected", "expired"}
)


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str
    kind: str
    message: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Approval:
    slot: str
    role: str
    user: str
    at: datetime
    via: str
    reason: str | None
    sha256: str
    rollback_sha256: str
    binds_plan: bool  # given for the plan's exact migration and rollback bytes


@dataclass(frozen=True)
class Rehearsal:
    id: int
    state: str
    operator: str
    started_at: datetime | None
    finished_at: datetime | None
    binds_plan: bool
    migration_seconds: float | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        return _between(self.started_at, self.finished_at)


@dataclass(frozen=True)
class Step:
    step: str
    label: str
    attempt: int
    state: str
    operator: str
    started_at: datetime | None
    finished_at: datetime | None
    summary: str | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        return _between(self.started_at, self.finished_at)


@dataclass(frozen=True)
class Sample:
    at: datetime
    values: dict[str, float | None]
    verdict: str
    rules: list[str]


@dataclass(frozen=True)
class Thresholds:
    """The policy's lines the window judged against (as configured when exported)."""

    normal_error_rate_pct: float
    rollback_error_rate_pct: float  # automatic rollback, in the window's first minutes
    rollback_latency_pct: float  # automatic rollback: slower than the baseline by more than this
    error_rate_pct: dict[str, float]  # severity -> error rate above which a breach is of it
    latency_pct: dict[str, float]  # severity -> degradation above which a breach is of it


@dataclass(frozen=True)
class Window:
    state: str
    opened_at: datetime | None
    early_until: datetime | None
    ends_at: datetime | None
    decision: str | None
    baseline: dict[str, float | None]
    worst: dict[str, float | None]
    samples: list[Sample]


@dataclass(frozen=True)
class Page:
    incident: int
    at: datetime
    level: int
    role: str
    users: list[str]
    why: str


@dataclass(frozen=True)
class Incident:
    id: int
    kind: str
    severity: str | None
    state: str
    reason: str
    opened_by: str
    opened_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    pages: list[Page]


@dataclass(frozen=True)
class Story:
    plan_id: int
    file_name: str
    environment: str
    complexity: str
    state: str
    author: str
    created_at: datetime
    sha256: str
    rollback_sha256: str
    approvals: list[Approval]
    rehearsals: list[Rehearsal]
    steps: list[Step]
    window: Window | None
    incidents: list[Incident]
    events: list[Event]
    thresholds: Thresholds

    @property
    def outcome(self) -> str:
        return PlanState(self.state).label

    @property
    def complexity_label(self) -> str:
        return Level(self.complexity).label

    @property
    def severity(self) -> str | None:
        """The worst severity of the plan's incidents."""
        found = [i.severity for i in self.incidents if i.severity]
        return min(found, key=ORDER.index) if found else None

    @property
    def started_at(self) -> datetime | None:
        """When the run started (its first step)."""
        return min((s.started_at for s in self.steps if s.started_at), default=None)

    @property
    def ended_at(self) -> datetime | None:
        """When the plan last reached an end (completed, rolled back …); None while it goes on."""
        return max((e.at for e in self.events if e.kind in ENDINGS), default=None)

    @property
    def impact(self) -> tuple[datetime, datetime | None] | None:
        """From the first bad sample or incident to the rollback (or the last incident's resolution);
        its end None while an incident is unresolved; None when nothing went wrong."""
        bad = [s.at for s in self.window.samples if s.verdict == Verdict.BAD] if self.window else []
        begun = min([*bad, *(i.opened_at for i in self.incidents)], default=None)
        if begun is None:
            return None
        rolled = [e.at for e in self.events if e.kind == "rolled_back" and e.at >= begun]
        if rolled:
            return begun, min(rolled)
        if any(i.resolved_at is None for i in self.incidents):
            return begun, None
        ends = [i.resolved_at for i in self.incidents if i.resolved_at] or bad
        return begun, max(ends)

    @property
    def decisions(self) -> list[Event]:
        return [e for e in self.events if e.kind in DECISIONS]

    @property
    def pages(self) -> list[Page]:
        return sorted((p for i in self.incidents for p in i.pages), key=lambda p: (p.at, p.incident, p.level))

    @property
    def apply_at(self) -> datetime | None:
        """When the migration was applied: its last successful apply step's end."""
        done = [s.finished_at for s in self.steps if s.step == StepKind.APPLY and s.state == "done"]
        return max((t for t in done if t), default=None)

    @property
    def rollback_at(self) -> datetime | None:
        """When the last rollback started."""
        return max((e.at for e in self.events if e.kind == "rolling_back"), default=None)


def gather(
    session: Session, plan_ref: int | str, config: BotConfig, environ: Mapping[str, str] | None = None
) -> Story:
    """The plan's stored facts, sorted and redacted; raises NotFound for an unknown plan."""
    plan = get_plan(session, plan_ref)
    story = Story(
        plan_id=plan.id,
        file_name=plan.file_name,
        environment=plan.environment,
        complexity=plan.complexity,
        state=plan.state,
        author=plan.author,
        created_at=aware(plan.created_at),
        sha256=plan.sha256,
        rollback_sha256=plan.rollback_sha256,
        approvals=_approvals(plan),
        rehearsals=_rehearsals(plan),
        steps=_steps(plan),
        window=_window(session, plan.id),
        incidents=_incidents(session, plan.id),
        events=_events(session, plan.id),
        thresholds=_thresholds(config),
    )
    return _redacted(story, known_secrets(config, environ))


def _approvals(plan: PlanRecord) -> list[Approval]:
    approvals = sorted(plan.approvals, key=lambda a: (aware(a.at), a.id))
    return [
        Approval(
            slot=a.slot,
            role=a.role,
            user=a.user_id,
            at=aware(a.at),
            via=a.via,
            reason=a.reason,
            sha256=a.sha256,
            rollback_sha256=a.rollback_sha256,
            binds_plan=(a.sha256, a.rollback_sha256) == (plan.sha256, plan.rollback_sha256),
        )
        for a in approvals
    ]


def _rehearsals(plan: PlanRecord) -> list[Rehearsal]:
    return [
        Rehearsal(
            id=r.id,
            state=r.state,
            operator=r.operator,
            started_at=_moment(r.started_at),
            finished_at=_moment(r.finished_at),
            binds_plan=(r.sha256, r.rollback_sha256) == (plan.sha256, plan.rollback_sha256),
            migration_seconds=r.report.get("migration_seconds"),
            error=r.error,
        )
        for r in sorted(plan.rehearsals, key=lambda r: r.id)
    ]


def _steps(plan: PlanRecord) -> list[Step]:
    return [
        Step(
            step=s.step,
            label=StepKind(s.step).label,
            attempt=s.attempt,
            state=s.state,
            operator=s.operator,
            started_at=_moment(s.started_at),
            finished_at=_moment(s.finished_at),
            summary=s.output.get("summary"),
            error=s.error,
        )
        for s in sorted(plan.steps, key=lambda s: s.id)
    ]


def _window(session: Session, plan_id: int) -> Window | None:
    record = session.scalars(select(MonitorRecord).where(MonitorRecord.plan_id == plan_id)).first()
    if record is None:
        return None
    samples = session.scalars(
        select(SampleRecord)
        .where(SampleRecord.monitor_id == record.id)
        .order_by(SampleRecord.taken_at, SampleRecord.id)
    )
    return Window(
        state=record.state,
        opened_at=_moment(record.opened_at),
        early_until=_moment(record.early_until),
        ends_at=_moment(record.ends_at),
        decision=record.decision,
        baseline={m: entry.get("value") for m, entry in sorted(record.baseline.items())},
        worst=dict(sorted(record.worst.items())),
        samples=[
            Sample(aware(s.taken_at), dict(sorted(s.values.items())), s.verdict, list(s.rules))
            for s in samples
        ],
    )


def _incidents(session: Session, plan_id: int) -> list[Incident]:
    records = session.scalars(
        select(IncidentRecord).where(IncidentRecord.plan_id == plan_id).order_by(IncidentRecord.id)
    ).all()
    pages: dict[int, list[Page]] = {r.id: [] for r in records}
    for page in session.scalars(
        select(PageRecord).where(PageRecord.incident_id.in_(pages)).order_by(PageRecord.at, PageRecord.id)
    ):
        pages[page.incident_id].append(
            Page(page.incident_id, aware(page.at), page.level, page.role, list(page.users), page.why)
        )
    return [
        Incident(
            id=r.id,
            kind=r.kind,
            severity=r.severity,
            state=r.state,
            reason=r.reason,
            opened_by=r.opened_by,
            opened_at=aware(r.created_at),
            acknowledged_by=r.acknowledged_by,
            acknowledged_at=_moment(r.acknowledged_at),
            resolved_by=r.resolved_by,
            resolved_at=_moment(r.resolved_at),
            resolution=r.resolution,
            pages=pages[r.id],
        )
        for r in records
    ]


def _events(session: Session, plan_id: int) -> list[Event]:
    records = session.scalars(
        select(EventRecord).where(EventRecord.plan_id == plan_id).order_by(EventRecord.at, EventRecord.id)
    )
    return [Event(aware(e.at), e.actor, e.kind, e.message, e.data or {}) for e in records]


def _thresholds(config: BotConfig) -> Thresholds:
    monitor, severities = config.policy.monitor, config.policy.severities
    return Thresholds(
        normal_error_rate_pct=monitor.normal_error_rate_pct,
        rollback_error_rate_pct=monitor.rollback_triggers.error_rate_pct,
        rollback_latency_pct=monitor.rollback_triggers.latency_degradation_pct,
        error_rate_pct={
            n: s.error_rate_above_pct for n, s in sorted(severities.items()) if s.error_rate_above_pct
        },
        latency_pct={
            n: s.latency_degradation_above_pct
            for n, s in sorted(severities.items())
            if s.latency_degradation_above_pct
        },
    )


def _between(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _moment(moment: datetime | None) -> datetime | None:
    return aware(moment) if moment is not None else None


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with every string in it redacted, through dataclasses, dicts (keys too) and lists."""
    if isinstance(value, str):
        return redact(value, secrets)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _redacted(getattr(value, f.name), secrets) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return {_redacted(k, secrets): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(item, secrets) for item in value)
    return value
