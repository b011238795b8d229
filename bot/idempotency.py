"""Requests handled once: Slack's retries, double clicks and replayed commands carry a key already seen."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import ActionRecord


def claim(session: Session, key: str | None, plan_id: int | None = None) -> bool:
    """Record that the request ``key`` is being handled, in the caller's transaction; False when it was.

    The unique key does the work, so two concurrent deliveries of one request cannot both pass.
    """
    if key is None:
        return True
    try:
        with session.begin_nested():
            session.add(ActionRecord(key=key, plan_id=plan_id))
    except IntegrityError:
        return False
    return True
