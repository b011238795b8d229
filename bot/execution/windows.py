"""Maintenance windows: when a plan that takes the application down may run on an environment.

Windows are weekly (``Sat 02:00-06:00``) in the environment's time zone, so a window keeps its local
hours across daylight-saving changes; an environment without windows allows any time. Outside every
window such a plan is refused, unless one of its approvers overrides with a reason: an ``Override``,
which the caller checks and records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot import timeline
from bot.approvals import approval_status
from bot.config import BotConfig, EnvironmentConfig
from bot.errors import Forbidden, InvalidState
from bot.execution.steps import StepKind, procedure_name, procedure_steps
from bot.markup import mention, quote
from bot.outbox import Outbox
from bot.plans import environment, plan_summary
from bot.roles import RoleDirectory
from bot.rules import display_name
from bot.sql.model import Level
from storage.models import PlanRecord

# Local days searched for the next opening: a week, and a day for daylight saving to shift it by.
SEARCH_DAYS = 8


def utc_label(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _spans(env: EnvironmentConfig, first: date, days: int) -> Iterator[tuple[datetime, datetime]]:
    """Each window's opening and closing, in UTC, on ``days`` local days from ``first``.

    Aware datetimes sharing a zone compare by their wall clocks, so each is taken to UTC first.
    """
    zone = ZoneInfo(env.timezone)
    for offset in range(days):
        day = first + timedelta(days=offset)
        for window in env.windows:
            if day.weekday() == window.weekday:
                ends = day + timedelta(days=1) if window.end < window.start else day
                yield (
                    datetime.combine(day, window.start, zone).astimezone(UTC),
                    datetime.combine(ends, window.end, zone).astimezone(UTC),
                )


def _local_day(env: EnvironmentConfig, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(env.timezone)).date()


def in_window(env: EnvironmentConfig, moment: datetime) -> bool:
    """True when ``moment`` falls inside one of the environment's windows (one opened the local day before
    may still be open)."""
    yesterday = _local_day(env, moment) - timedelta(days=1)
    return any(start <= moment < end for start, end in _spans(env, yesterday, 2))


def next_window(env: EnvironmentConfig, after: datetime) -> datetime | None:
    """When the environment's next window opens, strictly after ``after``; None without windows."""
    openings = (start for start, _ in _spans(env, _local_day(env, after), SEARCH_DAYS) if start > after)
    return min(openings, default=None)


def describe(env: EnvironmentConfig) -> str:
    """``Sat 02:00-06:00, Sun 02:00-06:00 UTC``."""
    return f"{', '.join(str(w) for w in env.windows)} {env.timezone}"


def opening_label(env: EnvironmentConfig, moment: datetime) -> str:
    """A window's opening in UTC, and in the environment's own time when that differs."""
    local = moment.astimezone(ZoneInfo(env.timezone))
    return utc_label(moment) + ("" if env.timezone == "UTC" else f" ({local:%H:%M} {env.timezone})")


def needs_window(config: BotConfig, plan: PlanRecord) -> str | None:
    """Why the plan must run inside a maintenance window, or None when it may run any time: its procedure
    takes the application down (maintenance mode), or it is High complexity, for which the guide requires
    a planned window."""
    name = procedure_name(config, plan.environment, plan_summary(plan), plan.procedure)
    if StepKind.MAINTENANCE_ON in procedure_steps(config, name):
        return f"its {name} procedure puts the application in maintenance mode"
    if Level(plan.complexity) is Level.HIGH:
        return "it is High complexity"
    return None


@dataclass(frozen=True)
class Override:
    """A plan run outside its environment's windows on a person's reason. The caller checks that person
    (``check``, outside any transaction: a role may be read from Slack) and records it (``record``)."""

    KIND: ClassVar[str] = "window_override"

    plan_id: int
    user: str
    reason: str
    roles: tuple[str, ...]  # who may give it: the plan's approver roles
    windows: str
    at: datetime

    def check(self, roles: RoleDirectory, *, operator: bool) -> None:
        """``operator``: the CLI, whose named operator is trusted, as for a run."""
        if operator or any(roles.holds(self.user, role) for role in self.roles):
            return
        who = (
            " or ".join(display_name(r) for r in self.roles) or "an operator on the CLI (it has no approvers)"
        )
        raise Forbidden(f"only {who} may run plan #{self.plan_id} outside its maintenance windows")

    @property
    def message(self) -> str:
        return f"run outside the maintenance windows ({self.windows}) at {utc_label(self.at)}: {self.reason}"

    def record(self, session: Session, plan: PlanRecord, outbox: Outbox) -> None:
        """On the plan's timeline, and in its thread."""
        data = {"reason": self.reason, "windows": self.windows, "at": self.at.isoformat()}
        timeline.record(
            session, plan_id=plan.id, actor=self.user, kind=self.KIND, message=self.message, data=data
        )
        outbox.thread(
            session,
            plan,
            f"⚠️ {mention(self.user)} runs plan #{plan.id} outside the maintenance windows ({self.windows}): "
            f"{quote(self.reason)}",
        )


def check_window(
    config: BotConfig, plan: PlanRecord, now: datetime, *, user: str, override_reason: str | None = None
) -> Override | None:
    """May the plan run ``now``? None when it may (it needs no window, its environment has none, or one is
    open); an ``Override`` when it runs outside them on ``user``'s reason; else InvalidState, saying when
    the next window opens and how to schedule the run there."""
    env = environment(config, plan.environment)
    why = needs_window(config, plan)
    if why is None or not env.windows or in_window(env, now):
        return None
    reason = (override_reason or "").strip()
    if reason:
        approvers = [s.role for s in approval_status(config, plan).slots if s.kind == "approval"]
        return Override(plan.id, user, reason, tuple(approvers), describe(env), now)
    opens = next_window(env, now)
    assert opens is not None  # an environment with windows has one every week
    raise InvalidState(
        f"{env.name}'s maintenance windows are {describe(env)} and plan #{plan.id} needs one ({why}); "
        f"the next opens {opening_label(env, opens)}: `/migrate schedule {plan.id} "
        f"{opens.astimezone(UTC):%Y-%m-%dT%H:%M}` or run it with an override reason"
    )
