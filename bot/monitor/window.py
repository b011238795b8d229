"""The window after a migration: a baseline before apply, a sample every interval for an hour after it,
each judged by the rules, and what the rules call for done: an automatic rollback, an incident paged
through its chain, a human asked when the data says nothing, and "All clear" at the end.

Everything a restarted leader needs is stored: the window's times, its streaks of bad and unknown
samples, its baseline. A sample is read outside any transaction (sources have deadlines of their own)
and judged and stored in one; what it calls for is done after, idempotently (an incident already open is
only raised, a rollback already under way is not ordered twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bot import timeline
from bot.config import EnvironmentConfig
from bot.deps import Deps, Service
from bot.errors import InvalidState
from bot.markup import mention, quote
from bot.monitor import reminders
from bot.monitor.incidents import IncidentKind, Incidents, unresolved_on
from bot.monitor.report import monitor_summary
from bot.monitor.rules import HEALTH, JUDGED, Finding, Judgement, Verdict, judge, most_severe
from bot.monitor.sources import Sample
from bot.notifier import Choice
from bot.plans import environment, get_plan, transition
from bot.states import PlanState
from storage.models import MonitorRecord, PlanRecord, SampleRecord, aware, passed

log = logging.getLogger(__name__)

# Reads every source and signal of an environment: what the window judges and shows.
Reader = Callable[[EnvironmentConfig, datetime], Mapping[str, Sample]]


class WindowState(StrEnum):
    BASELINE = "baseline"  # read before apply; the window opens when apply succeeds
    WATCHING = "watching"
    HELD = "held"  # the hour is over with an incident unresolved: the plan completes when it is resolved
    ALL_CLEAR = "all_clear"
    STOPPED = "stopped"  # a rollback ended it


OPEN = (WindowState.WATCHING, WindowState.HELD)


class Monitors(Service):
    def __init__(self, deps: Deps, incidents: Incidents, reader: Reader) -> None:
        super().__init__(deps)
        self.incidents = incidents
        self.reader = reader

    # --- the runner's hooks ----------------------------------------------------------------------------

    def enabled(self) -> bool:
        return self.config.policy.monitor.window_minutes > 0

    def before_apply(self, plan_id: int) -> None:
        """The baseline: every source read once, before the migration changes anything."""
        if not self.enabled():
            return
        with self.db.session() as session:
            env = environment(self.config, get_plan(session, plan_id).environment)
        samples = self.reader(env, self.clock())
        with self.db.session() as session:
            record = self._record(session, plan_id) or MonitorRecord(plan_id=plan_id, samples=0)
            record.state = WindowState.BASELINE.value
            record.baseline = {m: {"value": s.value, "detail": s.detail} for m, s in samples.items()}
            session.add(record)
            timeline.record(
                session,
                plan_id=plan_id,
                actor="bot",
                kind="monitor_baseline",
                message="baseline: " + _values_text(samples),
                data={"baseline": record.baseline},
            )

    def applied(self, plan_id: int) -> None:
        """Apply succeeded: the window opens now, its live message with it."""
        if not self.enabled():
            return
        policy, now = self.config.policy.monitor, self.clock()
        with self.db.session() as session:
            record = self._record(session, plan_id) or MonitorRecord(plan_id=plan_id, baseline={}, samples=0)
            record.state = WindowState.WATCHING.value
            record.opened_at, record.streaks, record.worst, record.last = now, {}, {}, {}
            record.early_until = now + timedelta(minutes=policy.rollback_triggers.error_rate_window_minutes)
            record.ends_at = now + timedelta(minutes=policy.window_minutes)
            record.next_sample_at = now + timedelta(seconds=policy.interval_seconds)
            record.reminders = reminders.schedule(self.config.policy, now)
            record.next_reminder_at = reminders.next_due(record.reminders)
            session.add(record)
            session.flush()
            plan = get_plan(session, plan_id)
            timeline.record(
                session,
                plan_id=plan_id,
                actor="bot",
                kind="monitor_opened",
                message=f"monitor window opened for {policy.window_minutes:g} minutes",
                data={"ends_at": record.ends_at.isoformat()},
            )
            self.outbox.monitor(session, plan, record.id)

    def watching(self, plan_id: int) -> bool:
        """Whether the plan's window still runs (its run then ends monitoring, not completed)."""
        with self.db.session() as session:
            record = self._record(session, plan_id)
            return record is not None and WindowState(record.state) in OPEN

    def stopped(self, plan_id: int, why: str) -> None:
        """A rollback started: the window has nothing left to watch."""
        with self.db.session() as session:
            record = self._record(session, plan_id)
            if record is None or WindowState(record.state) not in (*OPEN, WindowState.BASELINE):
                return
            record.state, record.decision, record.next_sample_at = WindowState.STOPPED.value, why, None
            record.next_reminder_at = None  # rolled back: there is no migration to check on
            timeline.record(
                session,
                plan_id=plan_id,
                actor="bot",
                kind="monitor_stopped",
                message=f"monitor stopped: {why}",
            )
            self.outbox.monitor(session, get_plan(session, plan_id), record.id)

    # --- the loop's work -------------------------------------------------------------------------------

    def due(self) -> list[int]:
        """Windows whose next sample is due, and held ones whose incident is over (each of those is settled
        under the write lock, which a window still held by its incident need not take at every poll)."""
        now = self.clock()
        with self.db.reading() as session:
            sampling = select(MonitorRecord.id).where(
                MonitorRecord.state == WindowState.WATCHING.value, MonitorRecord.next_sample_at <= now
            )
            held = select(MonitorRecord.id).where(
                MonitorRecord.state == WindowState.HELD.value,
                ~exists().where(unresolved_on(MonitorRecord.plan_id)),
            )
            reminding = select(MonitorRecord.id).where(MonitorRecord.next_reminder_at <= now)
            found = [*session.scalars(sampling), *session.scalars(held), *session.scalars(reminding)]
            return list(dict.fromkeys(found))

    def tick(self, monitor_id: int) -> Judgement | None:
        """Send a reminder that is due; take the sample that is due, judge it, store it, and do what it
        calls for."""
        with self.db.reading() as session:  # the poll's question, asked many times a second: no write lock
            found = session.execute(
                select(MonitorRecord.state, MonitorRecord.next_sample_at, MonitorRecord.next_reminder_at)
                .add_columns(PlanRecord.environment)
                .join(PlanRecord, PlanRecord.id == MonitorRecord.plan_id)
                .where(MonitorRecord.id == monitor_id)
            ).first()
        if found is None:
            return None
        state, next_sample_at, next_reminder_at, env_name = found
        env = environment(self.config, env_name)
        if passed(next_reminder_at, self.clock()):
            self._remind(monitor_id, env)
        if state == WindowState.HELD.value:
            with self.db.session() as session:
                record = session.get(MonitorRecord, monitor_id)
                if record is not None and record.state == WindowState.HELD.value:
                    self._settle(session, record)
            return None
        if state != WindowState.WATCHING.value or not passed(next_sample_at, self.clock()):
            return None
        samples = self.reader(env, self.clock())
        with self.db.session() as session:
            record = session.get(MonitorRecord, monitor_id)
            if record is None or record.state != WindowState.WATCHING.value:
                return None  # stopped meanwhile (a rollback)
            judgement, broken, ask = self._store(session, record, samples)
            plan_id, number = record.plan_id, record.samples
        if broken:
            self._breach(plan_id, broken, number)
        elif ask:
            self._ask(plan_id, samples, judgement, number)
        return judgement

    def _store(
        self, session: Session, record: MonitorRecord, samples: Mapping[str, Sample]
    ) -> tuple[Judgement, list[Finding], bool]:
        """The sample stored and judged; the rules it broke (their streak long enough) and whether a
        human must be asked."""
        policy, now = self.config.policy, self.clock()
        baseline = {m: b.get("value") for m, b in record.baseline.items()}
        values = {m: s.value for m, s in samples.items()}
        details = {m: s.detail for m, s in samples.items()}
        judged = {m: v for m, v in values.items() if m in JUDGED}
        early = not passed(record.early_until, now)
        judgement = judge(judged, baseline, early=early, policy=policy.monitor, severities=policy.severities)
        streaks = dict(record.streaks)
        bad = {f.rule for f in judgement.findings}
        for metric in JUDGED:
            streaks[metric] = streaks.get(metric, 0) + 1 if metric in bad else 0
        streaks["unknown"] = streaks.get("unknown", 0) + 1 if judgement.verdict is Verdict.UNKNOWN else 0
        broken = [f for f in judgement.findings if streaks[f.rule] >= self._needed(f.rule)]
        ask = streaks["unknown"] >= policy.monitor.inconclusive_samples
        if ask:
            streaks["unknown"] = 0  # asked once per run of unknown samples
        record.samples += 1
        record.streaks = streaks
        record.last = {
            "at": now.isoformat(),
            "values": values,
            "details": details,
        }
        record.worst = _worse(record.worst, values)
        record.next_sample_at = max(
            aware(record.next_sample_at or now) + timedelta(seconds=policy.monitor.interval_seconds),
            now,
        )
        session.add(
            SampleRecord(
                monitor_id=record.id,
                taken_at=now,
                values=values,
                details=details,
                verdict=judgement.verdict.value,
                rules=[f.words for f in judgement.findings],
            )
        )
        timeline.record(
            session,
            plan_id=record.plan_id,
            actor="bot",
            kind="monitor_sample",
            message=f"sample #{record.samples}: {judgement.verdict.value}: {_values_text(samples)}"
            + "".join(f"; {f.words}" for f in judgement.findings),
            data={"sample": record.samples, "values": values, "verdict": judgement.verdict.value},
        )
        news = bool(broken) or ask
        if broken:
            worst = most_severe(broken)
            record.decision = (
                "rolling back: " if any(f.automatic for f in broken) else "incident: "
            ) + worst.words
        if passed(record.ends_at, now) and not broken:
            self._end(session, record)
            news = True
        if news or record.samples % policy.monitor.redraw_every_samples == 0:
            self.outbox.monitor(session, get_plan(session, record.plan_id), record.id)
        return judgement, broken, ask

    def _remind(self, monitor_id: int, env: EnvironmentConfig) -> None:
        """The post-migration checklist's reminders that are due, each once, with what is measured now."""
        now_read = self.reader(env, self.clock())
        policy = self.config.policy
        with self.db.session() as session:
            record = session.get(MonitorRecord, monitor_id)
            if record is None or not passed(record.next_reminder_at, self.clock()):
                return
            plan, found = (
                get_plan(session, record.plan_id),
                reminders.measured(policy, now_read, record.baseline),
            )
            sections = list(policy.post_checklist)
            # copies: the stored list is compared with the new one to be saved, so it must not change
            schedule = [dict(r) for r in record.reminders]
            due = [r for r in schedule if not r["sent"] and datetime.fromisoformat(r["at"]) <= self.clock()]
            for reminder in due:
                reminder["sent"] = True
                index = sections.index(reminder["section"])
                items = policy.post_checklist[reminder["section"]]
                text = reminders.reminder_text(plan.id, reminder["section"], items, found)
                open_items = [i for i, item in enumerate(items) if found.get(item, (None, ""))[0] is not True]
                choices = [(Choice.TICK, f"{plan.id}:{index}:{i}") for i in open_items]
                self.outbox.choices(session, plan, text, choices)
                timeline.record(
                    session,
                    plan_id=plan.id,
                    actor="bot",
                    kind="checklist_reminder",
                    message=f"post-migration checklist: {reminder['section']}",
                    data={"measured": {item: list(v) for item, v in found.items() if item in items}},
                )
            record.reminders = schedule
            record.next_reminder_at = reminders.next_due(schedule)

    def tick_item(self, value: str, *, user: str) -> str:
        """Someone ticked an item of a reminder (``value``: plan:section:item); the item, in words."""
        plan_id, section_index, item_index = (int(part) for part in value.split(":"))
        sections = list(self.config.policy.post_checklist)
        item = self.config.policy.post_checklist[sections[section_index]][item_index]
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            self.incidents.check_may_answer(plan, user)
            timeline.record(
                session,
                plan_id=plan.id,
                actor=user,
                kind="checklist_ticked",
                message=f"ticked: {item}",
                data={"section": sections[section_index], "item": item},
            )
            self.outbox.thread(session, plan, f"☑️ {mention(user)} ticked “{quote(item)}”.")
        return item

    def _needed(self, rule: str) -> int:
        monitor = self.config.policy.monitor
        return monitor.rollback_triggers.health_check_failures if rule == HEALTH else monitor.breach_samples

    def _breach(self, plan_id: int, broken: list[Finding], number: int) -> None:
        worst = most_severe(broken)
        reason = (
            "; ".join(f.words for f in broken) + f" (sample #{number}, {self._needed(worst.rule)} in a row)"
        )
        try:
            self.incidents.open(
                plan_id,
                kind=IncidentKind.BREACH,
                severity=worst.severity,
                reason=reason,
                roll_back=any(f.automatic for f in broken) or None,
            )
        except InvalidState as err:  # the plan moved on meanwhile (rolled back by someone): nothing to do
            log.info("plan #%s: %s", plan_id, err)

    def _ask(self, plan_id: int, samples: Mapping[str, Sample], judgement: Judgement, number: int) -> None:
        unknown = "; ".join(f"{m}: {samples[m].detail}" for m in judgement.unknown)
        reason = (
            f"no data for {self.config.policy.monitor.inconclusive_samples} samples in a row "
            f"(up to #{number}): {unknown}. No data is not good data"
        )
        with self.db.session() as session:
            if self.incidents.unresolved(session, plan_id) is not None:
                return  # someone is already asked about this plan
        try:
            self.incidents.open(plan_id, kind=IncidentKind.INCONCLUSIVE, severity=None, reason=reason)
        except InvalidState as err:
            log.info("plan #%s: %s", plan_id, err)

    def _end(self, session: Session, record: MonitorRecord) -> None:
        """The hour is over: all clear, or held until the incident still open is resolved."""
        if self.incidents.unresolved(session, record.plan_id) is not None:
            record.state, record.next_sample_at = WindowState.HELD.value, None
            record.decision = "the window ended with an incident unresolved"
            return
        self._all_clear(session, record)

    def _settle(self, session: Session, record: MonitorRecord) -> None:
        if self.incidents.unresolved(session, record.plan_id) is None:
            self._all_clear(session, record)
            self.outbox.monitor(session, get_plan(session, record.plan_id), record.id)

    def _all_clear(self, session: Session, record: MonitorRecord) -> None:
        record.state, record.next_sample_at = WindowState.ALL_CLEAR.value, None
        record.decision = record.decision or "all clear"
        plan = get_plan(session, record.plan_id)
        summary = monitor_summary(record)
        timeline.record(
            session, plan_id=plan.id, actor="bot", kind="monitor_all_clear", message=f"all clear: {summary}"
        )
        if PlanState(plan.state) is PlanState.MONITORING:
            transition(
                session,
                plan,
                PlanState.COMPLETED,
                actor="bot",
                kind="completed",
                message=f"the monitor window is over: {summary}",
                data={},
            )
        self.outbox.thread(session, plan, f"✅ *All clear* on plan #{plan.id}: {summary}.")
        self.outbox.redraw(session, plan)

    def _record(self, session: Session, plan_id: int) -> MonitorRecord | None:
        return session.scalars(select(MonitorRecord).where(MonitorRecord.plan_id == plan_id)).first()


def _worse(worst: Mapping[str, Any], values: Mapping[str, float | None]) -> dict[str, Any]:
    """The worst value of each metric so far: the highest, but for health the lowest."""
    merged = dict(worst)
    for metric, value in values.items():
        if value is None:
            continue
        seen = merged.get(metric)
        if seen is None or (value < seen if metric == HEALTH else value > seen):
            merged[metric] = value
    return merged


def _values_text(samples: Mapping[str, Sample]) -> str:
    return ", ".join(
        f"{m} {s.value:g}" if s.value is not None else f"{m} unknown" for m, s in samples.items()
    )
