"""Messages owed to Slack, written in the same transaction as the change they report.

A decision that commits owes its announcement; one that rolls back owes nothing. Nothing here talks to
Slack: ``bot.delivery`` sends the rows, in order per stream (a plan's message and its thread; one
person's private notes), once each, after a restart too.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, system_clock
from bot.notifier import Choice, Part
from bot.redact import redact_value
from storage.db import Database
from storage.models import OutboxRecord, PlanRecord

TOPIC = "outbox"
# Slack errors that an invitation fixes, so the hint can say so.
NOT_A_MEMBER = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class Kind(StrEnum):
    PLAN = "plan"  # the plan's message, drawn from its state when delivered
    PART = "part"  # SQL, rollback or checklist in the plan's thread
    THREAD = "thread"  # a line of news in the plan's thread
    REDRAW = "redraw"  # the plan's message drawn again from its current state
    LINK = "link"  # a pointer to the plan from the channel where it was asked for
    EPHEMERAL = "ephemeral"  # a note only one person sees
    STEP = "step"  # a step's line in the plan's thread, posted then redrawn from the step's state
    REHEARSAL = "rehearsal"  # a rehearsal's line in the plan's thread, posted then redrawn as it goes
    MONITOR = "monitor"  # the monitor window's live message in the plan's thread, redrawn as it samples
    CHOICES = "choices"  # a message that asks (buttons): in the plan's thread, or to one person directly
    PAGERDUTY = "pagerduty"  # an Events API v2 trigger for an incident
    CHANNEL = "channel"  # a message to a channel, not about one plan's thread (a freeze, a notice)
    FILE = "file"  # a timeline export uploaded to the plan's thread, drawn from the store when sent


class Delivery(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def plan_stream(plan_id: int) -> str:
    return f"plan:{plan_id}"


class Outbox:
    """Writes what is owed; every method takes the caller's session so it commits with the change."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    def _add(
        self,
        session: Session,
        kind: Kind,
        stream: str,
        *,
        plan_id: int | None = None,
        key: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> int:
        now = self.clock()
        row = OutboxRecord(
            plan_id=plan_id,
            stream=stream,
            kind=kind.value,
            key=key,
            payload=redact_value(payload or {}),  # what the bot will say is stored as it will be said
            state=Delivery.PENDING.value,
            attempts=0,
            not_before=now,
            created_at=now,
        )
        session.add(row)
        session.flush()
        Database.notify(session, TOPIC)
        return row.id

    def announce_plan(self, session: Session, plan: PlanRecord, *, typed_in: str | None) -> list[int]:
        """The plan in its channel, then its SQL, rollback and checklist in its thread, and a pointer from
        the channel where it was asked for when that is another one."""
        if plan.channel_id is None:
            return []
        stream = plan_stream(plan.id)
        ids = [self._add(session, Kind.PLAN, stream, plan_id=plan.id, key=f"plan:{plan.id}:post")]
        ids += [
            self._add(session, Kind.PART, stream, plan_id=plan.id, payload={"part": part.value})
            for part in Part
        ]
        if typed_in and typed_in != plan.channel_id:
            ids.append(self._add(session, Kind.LINK, stream, plan_id=plan.id, payload={"channel": typed_in}))
        return ids

    def thread(self, session: Session, plan: PlanRecord, text: str) -> list[int]:
        """A line of news in the plan's thread (bot markup: mentions, quoted free text)."""
        if plan.channel_id is None:
            return []
        return [
            self._add(session, Kind.THREAD, plan_stream(plan.id), plan_id=plan.id, payload={"text": text})
        ]

    def redraw(self, session: Session, plan: PlanRecord) -> list[int]:
        """Draw the plan's message again; a redraw still waiting covers this one (it draws what is
        current when it is sent), so a burst of clicks costs Slack one update."""
        return self._line(session, plan, Kind.REDRAW, {})

    def step(self, session: Session, plan: PlanRecord, step_id: int) -> list[int]:
        """Post or redraw a step's line (drawn from the step when delivered); one waiting covers more."""
        return self._line(session, plan, Kind.STEP, {"step_id": step_id})

    def rehearsal(self, session: Session, plan: PlanRecord, rehearsal_id: int) -> list[int]:
        """Post or redraw a rehearsal's line, like a step's."""
        return self._line(session, plan, Kind.REHEARSAL, {"rehearsal_id": rehearsal_id})

    def monitor(self, session: Session, plan: PlanRecord, monitor_id: int) -> list[int]:
        """Post or redraw the window's live message, like a step's line."""
        return self._line(session, plan, Kind.MONITOR, {"monitor_id": monitor_id})

    def choices(
        self,
        session: Session,
        plan: PlanRecord,
        text: str,
        choices: Sequence[tuple[Choice, str]],
        *,
        to: str | None = None,
    ) -> list[int]:
        """A message that asks, in the plan's thread, or to user ``to`` directly (a page)."""
        payload = {"text": text, "choices": [[c.value, v] for c, v in choices], "to": to}
        if to is not None:
            return [self._add(session, Kind.CHOICES, f"dm:{to}", plan_id=plan.id, payload=payload)]
        if plan.channel_id is None:
            return []
        return [self._add(session, Kind.CHOICES, plan_stream(plan.id), plan_id=plan.id, payload=payload)]

    def pagerduty(
        self, session: Session, plan: PlanRecord, event: dict[str, Any], *, key_env: str, url: str
    ) -> int:
        """A PagerDuty event; the routing key is read from ``key_env`` when it is sent, never stored."""
        payload = {"event": event, "key_env": key_env, "url": url}
        return self._add(session, Kind.PAGERDUTY, "pagerduty", plan_id=plan.id, payload=payload)

    def file(self, session: Session, plan: PlanRecord, fmt: str, *, by: str) -> list[int]:
        """A timeline export of ``fmt`` for the plan's thread. Only its format is stored: it is drawn
        when sent, from what the store holds then (3,600 samples make 1.5 MB of JSON, too much for a
        row of the outbox); one waiting covers another of the same format."""
        return self._line(session, plan, Kind.FILE, {"format": fmt, "by": by}, same=("format",))

    def _line(
        self,
        session: Session,
        plan: PlanRecord,
        kind: Kind,
        payload: dict[str, Any],
        *,
        same: tuple[str, ...] | None = None,
    ) -> list[int]:
        """A row of ``kind`` for the plan's thread, unless one waiting with the same ``same`` keys of its
        payload (all of them by default) covers it."""
        if plan.channel_id is None:
            return []
        keys = tuple(payload) if same is None else same
        for row in self._waiting(session, plan, kind):
            if all(row.payload.get(key) == payload[key] for key in keys):
                return [row.id]
        return [self._add(session, kind, plan_stream(plan.id), plan_id=plan.id, payload=payload)]

    def _waiting(self, session: Session, plan: PlanRecord, kind: Kind) -> Sequence[OutboxRecord]:
        """The plan's rows of ``kind`` not sent yet: one may cover a new one."""
        return session.scalars(
            select(OutboxRecord).where(
                OutboxRecord.stream == plan_stream(plan.id),
                OutboxRecord.kind == kind.value,
                OutboxRecord.state == Delivery.PENDING.value,
            )
        ).all()

    def channel(self, session: Session, channel: str, text: str, *, plan_id: int | None = None) -> list[int]:
        return [
            self._add(
                session,
                Kind.CHANNEL,
                f"channel:{channel}",
                plan_id=plan_id,
                payload={"channel": channel, "text": text},
            )
        ]

    def ephemeral(
        self, session: Session, *, channel: str, user: str, text: str, plan_id: int | None = None
    ) -> list[int]:
        payload = {"channel": channel, "user": user, "text": text}
        return [self._add(session, Kind.EPHEMERAL, f"user:{user}", plan_id=plan_id, payload=payload)]

    def unsent(self, session: Session, ids: Sequence[int]) -> list[OutboxRecord]:
        """Those of ``ids`` not delivered yet (pending or failed)."""
        if not ids:
            return []
        return list(
            session.scalars(
                select(OutboxRecord)
                .where(OutboxRecord.id.in_(ids), OutboxRecord.state != Delivery.SENT.value)
                .order_by(OutboxRecord.id)
            )
        )

    def problems(self, session: Session, plan: PlanRecord) -> list[str]:
        """What a plan's status must admit about its messages: refused ones, and how to fix them."""
        rows = session.scalars(
            select(OutboxRecord)
            .where(OutboxRecord.plan_id == plan.id, OutboxRecord.state != Delivery.SENT.value)
            .order_by(OutboxRecord.id)
        ).all()
        return delivery_problems(plan.id, rows)

    def repost(self, session: Session, plan: PlanRecord) -> int:
        """Try every refused message of the plan again (after the bot was invited, say); returns how many."""
        rows = session.scalars(
            select(OutboxRecord).where(
                OutboxRecord.plan_id == plan.id, OutboxRecord.state == Delivery.FAILED.value
            )
        ).all()
        now = self.clock()
        for row in rows:
            row.state, row.attempts, row.not_before, row.last_error = Delivery.PENDING.value, 0, now, None
        if rows:
            Database.notify(session, TOPIC)
        return len(rows)


def delivery_problems(plan_id: int, rows: Sequence[OutboxRecord]) -> list[str]:
    failed = [r for r in rows if r.state == Delivery.FAILED.value]
    waiting = [r for r in rows if r.state == Delivery.PENDING.value]
    lines = []
    if failed:
        errors = sorted({r.last_error or "unknown error" for r in failed})
        what = (
            "Plan message" if any(r.kind == Kind.PLAN.value for r in failed) else f"{len(failed)} message(s)"
        )
        hint = "invite the bot (`/invite @migrate-bot`), then " if NOT_A_MEMBER & set(errors) else ""
        lines.append(f"⚠️ {what} not posted: {', '.join(errors)}; {hint}`/migrate repost {plan_id}`")
    if waiting:
        lines.append(
            f"⏳ {len(waiting)} message(s) waiting for Slack ({waiting_reasons(waiting)}); "
            "they are sent as soon as Slack accepts them"
        )
    return lines


def waiting_reasons(rows: Sequence[OutboxRecord]) -> str:
    """Why messages are still waiting: what Slack last said, or that it has not been asked yet."""
    return ", ".join(sorted({r.last_error for r in rows if r.last_error})) or "queued"
