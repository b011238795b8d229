"""The bot's own state: plans and their append-only timeline (SQLAlchemy 2.0 typed models)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    rollback_sql: Mapped[str] = mapped_column(Text)
    rollback_sha256: Mapped[str] = mapped_column(String(64))
    rollback: Mapped[dict[str, Any]]
    analysis: Mapped[dict[str, Any]]
    rollback_analysis: Mapped[dict[str, Any] | None]
    complexity: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(100))
    channel_id: Mapped[str | None] = mapped_column(String(50))
    message_ts: Mapped[str | None] = mapped_column(String(50))
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    events: Mapped[list[EventRecord]] = relationship(
        back_populates="plan", order_by="EventRecord.id", cascade="all, delete-orphan"
    )


class EventRecord(Base):
    """A timeline entry: who did what to a plan, when, with structured data for exports."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    plan: Mapped[PlanRecord] = relationship(back_populates="events")
