"""The deliverer: sends what the outbox holds, in order per stream, once each, whatever Slack does.

Only the leader process delivers (``storage.leader``), so two replicas never post the same message.
A row is marked sent in the transaction that records where it landed; a crash between Slack's answer
and that commit is the one window in which a message can be sent twice. Rate limits pause delivery
for Slack's ``Retry-After``; other transient failures back off per row; a permanent refusal marks the
row failed, puts it on the plan's timeline and blocks the rest of its stream until ``repost``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import timeline
from bot.approvals import approval_status
from bot.clock import Clock, system_clock
from bot.config import BotConfig, DeliveryConfig
from bot.execution.rehearsal_report import rehearsal_line
from bot.execution.report import step_line
from bot.export import Format, export_files, gather
from bot.markup import mention
from bot.monitor import pagerduty
from bot.monitor.report import monitor_line
from bot.notifier import Choice, DeliveryDeferred, DeliveryFailed, MessageRef, Notifier, Part, PlanView
from bot.outbox import Delivery, Kind
from bot.redact import redact
from bot.views import message_ref, plan_view
from storage.db import Database
from storage.models import MonitorRecord, OutboxRecord, PlanRecord, RehearsalRecord, StepRecord, aware

log = logging.getLogger(__name__)
# Rows that show the plan itself, so the plan is drawn to send them.
DRAWN = frozenset({Kind.PLAN, Kind.PART, Kind.REDRAW, Kind.LINK})
# Records whose line in the plan's thread is posted once, then redrawn.
Line = StepRecord | RehearsalRecord | MonitorRecord
LineRecord = TypeVar("LineRecord", StepRecord, RehearsalRecord, MonitorRecord)

# How often a deliverer with nothing due looks for rows other processes (the CLI) wrote.
POLL_SECONDS = 0.5


class _Blocked(Exception):
    """The row needs its plan's message, which is not posted (refused, waiting for a repost)."""


@dataclass(frozen=True)
class _Loaded:
    row: OutboxRecord
    plan: PlanRecord | None
    view: PlanView | None


class Deliverer:
    def __init__(
        self,
        *,
        db: Database,
        config: BotConfig,
        notifier: Notifier,
        clock: Clock = system_clock,
        settings: DeliveryConfig | None = None,
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.db = db
        self.config = config
        self.notifier = notifier
        self.clock = clock
        self.settings = settings or config.delivery
        # asked before each message: a worker whose bot was killed must send nothing more
        self.wanted = wanted
        self._wake = threading.Event()
        self._paused_until: datetime | None = None
        self._lock = threading.Lock()  # one pass at a time, whichever thread asks

    def wake(self) -> None:
        """Something was committed to the outbox: look now rather than at the next poll."""
        self._wake.set()

    def wait(self) -> None:
        """Until something is committed to the outbox, the next poll, or the end of a rate-limit pause."""
        self._wake.wait(self.idle_seconds())
        self._wake.clear()

    def deliver_due(self, plan_id: int | None = None) -> int:
        """Send every row that is due, stream by stream, until none is; returns how many were sent."""
        sent = 0
        with self._lock:
            while True:
                settled = 0  # rows sent or failed for good: the next row of their stream is due now
                for row in self._due_heads(plan_id):
                    if self._paused() or not self.wanted():
                        return sent
                    outcome = self._attempt(row)
                    sent += outcome is Delivery.SENT
                    settled += outcome is not Delivery.PENDING
                if not settled:
                    return sent

    def _paused(self) -> bool:
        if self._paused_until is not None and self.clock() >= self._paused_until:
            self._paused_until = None
        return self._paused_until is not None

    def idle_seconds(self) -> float:
        """Until the next poll, or the end of a rate-limit pause when that comes first."""
        if not self._paused():
            return POLL_SECONDS
        assert self._paused_until is not None
        return min(POLL_SECONDS, (self._paused_until - self.clock()).total_seconds())

    def _due_heads(self, plan_id: int | None) -> list[OutboxRecord]:
        """The oldest pending row of each stream, when its time has come."""
        with self.db.session() as session:
            query = select(OutboxRecord).where(OutboxRecord.state == Delivery.PENDING.value)
            if plan_id is not None:
                query = query.where(OutboxRecord.plan_id == plan_id)
            rows = session.scalars(query.order_by(OutboxRecord.id)).all()
        heads: dict[str, OutboxRecord] = {}
        for row in rows:
            heads.setdefault(row.stream, row)
        now = self.clock()
        return [row for row in heads.values() if aware(row.not_before) <= now]

    def _load(self, row: OutboxRecord) -> _Loaded:
        """The row's plan, and the plan drawn when the row shows it (drawing is the costly part)."""
        with self.db.session() as session:
            plan = session.get(PlanRecord, row.plan_id) if row.plan_id is not None else None
            if plan is None or Kind(row.kind) not in DRAWN:
                return _Loaded(row, plan, None)
            return _Loaded(row, plan, plan_view(self.config, plan, approval_status(self.config, plan)))

    def _attempt(self, row: OutboxRecord) -> Delivery:
        """Send one row; what became of it."""
        try:
            loaded = self._load(row)
            ref = self._send(loaded)
        except _Blocked:
            return Delivery.PENDING
        except DeliveryDeferred as deferred:
            self._defer(row, deferred)
            return Delivery.PENDING
        except DeliveryFailed as failed:
            self._fail(row, failed.reason)
            return Delivery.FAILED
        except Exception as err:  # a bug, or a plan that can no longer be drawn: never retried blindly
            log.exception("outbox row %s (%s) cannot be delivered", row.id, row.kind)
            self._fail(row, f"{type(err).__name__}: {err}"[:200])
            return Delivery.FAILED
        self._mark_sent(row, ref)
        return Delivery.SENT

    def _send(self, loaded: _Loaded) -> MessageRef | None:
        row, plan, view = loaded.row, loaded.plan, loaded.view
        kind, payload = Kind(row.kind), row.payload
        if kind is Kind.EPHEMERAL:
            self.notifier.post_ephemeral(
                channel=payload["channel"], user=payload["user"], text=payload["text"]
            )
            return None
        if kind is Kind.CHANNEL:
            self.notifier.post_message(channel=payload["channel"], text=payload["text"])
            return None
        if kind is Kind.PAGERDUTY:
            pagerduty.trigger(payload["url"], payload["key_env"], payload["event"])
            return None
        if plan is None:
            raise DeliveryFailed("plan_not_found")
        choices = [(Choice(c), v) for c, v in payload.get("choices", [])]
        if kind is Kind.CHOICES and payload.get("to"):  # a page: straight to the person
            self.notifier.post_choices(
                channel=payload["to"], text=payload["text"], choices=choices, thread=None
            )
            return None
        ref = message_ref(plan)
        if kind is Kind.PLAN:
            assert view is not None
            if ref is not None:  # posted already (a repost of a plan whose message exists)
                return ref
            assert plan.channel_id is not None
            return self.notifier.post_plan(view, channel=plan.channel_id)
        if ref is None:
            raise _Blocked
        if kind is Kind.CHOICES:
            self.notifier.post_choices(channel=ref.channel, text=payload["text"], choices=choices, thread=ref)
        elif kind is Kind.MONITOR:
            self._send_line(MonitorRecord, payload["monitor_id"], ref)
        elif kind is Kind.STEP:
            self._send_line(StepRecord, payload["step_id"], ref)
        elif kind is Kind.REHEARSAL:
            self._send_line(RehearsalRecord, payload["rehearsal_id"], ref)
        elif kind is Kind.THREAD:
            self.notifier.post_in_thread(ref, payload["text"])
        elif kind is Kind.FILE:
            self._send_file(plan, payload, ref)
        else:
            self._send_drawn(kind, payload, view, ref)
        return None

    def _send_drawn(
        self, kind: Kind, payload: dict[str, Any], view: PlanView | None, ref: MessageRef
    ) -> None:
        """What shows the plan itself: a part of it, its message redrawn, a pointer to it."""
        assert view is not None
        if kind is Kind.PART:
            self.notifier.post_part(view, ref, Part(payload["part"]))
        elif kind is Kind.REDRAW:
            self.notifier.update_plan(view, ref)
        elif kind is Kind.LINK:
            self.notifier.post_link(view, ref, channel=payload["channel"])

    def _send_file(self, plan: PlanRecord, payload: dict[str, Any], ref: MessageRef) -> None:
        """A timeline export, drawn now from what the store holds, in the plan's thread."""
        fmt = Format(payload["format"])
        with self.db.session() as session:
            story = gather(session, plan.id, self.config)
        text = f"📎 Timeline of plan #{plan.id} ({fmt.value}), asked for by {mention(payload['by'])}"
        self.notifier.upload_file(ref, export_files(story, fmt), text=text)

    def _send_line(self, model: type[LineRecord], record_id: int, ref: MessageRef) -> None:
        """Post a step's, a rehearsal's or a monitor's line the first time, redraw it after; where it
        is, is stored at once (a second post of the same line would be a double)."""
        with self.db.session() as session:
            record = session.get(model, record_id)
            assert record is not None
            text, line_ts = _line(record, self.clock()), record.message_ts
        if line_ts is not None:
            self.notifier.update_line(MessageRef(ref.channel, line_ts), text)
            return
        posted = self.notifier.post_line(ref, text)
        with self.db.session() as session:
            stored = session.get(model, record_id)
            assert stored is not None
            stored.message_ts = posted.ts

    @contextmanager
    def _stored(self, row: OutboxRecord) -> Iterator[tuple[Session, OutboxRecord]]:
        """The row as stored, in a transaction of its own, to record what became of it."""
        with self.db.session() as session:
            stored = session.get(OutboxRecord, row.id)
            assert stored is not None
            yield session, stored

    def _mark_sent(self, row: OutboxRecord, ref: MessageRef | None) -> None:
        with self._stored(row) as (session, stored):
            stored.state, stored.sent_at, stored.last_error = Delivery.SENT.value, self.clock(), None
            if row.kind == Kind.PLAN.value and ref is not None and row.plan_id is not None:
                plan = session.get(PlanRecord, row.plan_id)
                assert plan is not None
                if plan.message_ts is None:
                    plan.channel_id, plan.message_ts = ref.channel, ref.ts
                    timeline.record(
                        session,
                        plan_id=plan.id,
                        actor="bot",
                        kind="announced",
                        message=f"posted in {ref.channel}",
                        data={"channel": ref.channel, "ts": ref.ts},
                    )

    def _defer(self, row: OutboxRecord, deferred: DeliveryDeferred) -> None:
        now = self.clock()
        if now - aware(row.created_at) >= timedelta(hours=self.settings.give_up_after_hours):
            self._fail(row, f"gave up after {self.settings.give_up_after_hours:g} h: {deferred.reason}")
            return
        attempts = row.attempts + 1
        if deferred.retry_after is not None:
            wait = deferred.retry_after
            self._paused_until = now + timedelta(seconds=wait)  # a rate limit holds for every stream
        else:
            wait = min(self.settings.retry_max_seconds, 2.0 ** (attempts - 1))
        log.info("outbox row %s (%s) deferred %.1fs: %s", row.id, row.kind, wait, deferred.reason)
        with self._stored(row) as (_, stored):
            stored.attempts, stored.last_error = attempts, redact(deferred.reason)
            stored.not_before = now + timedelta(seconds=wait)

    def _fail(self, row: OutboxRecord, reason: str) -> None:
        log.warning("outbox row %s (%s) failed for good: %s", row.id, row.kind, reason)
        with self._stored(row) as (session, stored):
            stored.state, stored.attempts = Delivery.FAILED.value, row.attempts + 1
            stored.last_error = redact(reason)
            if row.plan_id is not None:
                timeline.record(
                    session,
                    plan_id=row.plan_id,
                    actor="bot",
                    kind="delivery_failed",
                    message=f"Slack refused the {row.kind} message: {reason}",
                    data={"outbox_id": row.id, "kind": row.kind, "error": reason},
                )


def _line(record: Line, now: datetime) -> str:
    if isinstance(record, StepRecord):
        return step_line(record, now)
    if isinstance(record, RehearsalRecord):
        return rehearsal_line(record, now)
    return monitor_line(record, now)
