"""The append-only timeline of a plan: every decision and step, with who, when and the data behind it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.redact import redact, redact_value
from storage.models import EventRecord


def record(
    session: Session, *, plan_id: int, actor: str, kind: str, message: str, data: dict[str, Any] | None = None
) -> EventRecord:
    """Append one event; secrets anywhere in it (message, actor, kind, nested data) are redacted first."""
    event = EventRecord(
        plan_id=plan_id,
        actor=redact(actor),
        kind=redact(kind),
        message=redact(message),
        data=redact_value(data or {}),
    )
    session.add(event)  # written with the session's other changes, in the order they were added
    return event


def events(session: Session, *, plan_id: int) -> list[EventRecord]:
    return list(
        session.scalars(select(EventRecord).where(EventRecord.plan_id == plan_id).order_by(EventRecord.id))
    )
