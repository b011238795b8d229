"""User-group members cached in the bot's own store: every process of the bot, and every replica,
answers role checks from what any of them last read from Slack."""

from __future__ import annotations

from datetime import datetime

from storage.db import Database
from storage.models import GroupRecord, aware


class StoredGroups:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, group: str) -> tuple[datetime, frozenset[str]] | None:
        with self.db.session() as session:
            row = session.get(GroupRecord, group)
            return (aware(row.read_at), frozenset(row.members)) if row else None

    def put(self, group: str, members: frozenset[str], at: datetime) -> None:
        with self.db.session() as session:
            session.merge(GroupRecord(group_id=group, members=sorted(members), read_at=at))
