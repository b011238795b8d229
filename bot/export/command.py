"""``migrate-bot timeline``: one plan's export, or every plan of a period (an audit), into a folder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.config import BotConfig
from bot.errors import UserError
from bot.export import Format, export_files, gather
from storage.db import Database
from storage.models import EventRecord


def parse_moment(text: str, option: str) -> datetime:
    """A date or a date and time, UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: a date like 2026-11-01 or 2026-11-01T02:00, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plans_between(db: Database, since: datetime, until: datetime | None) -> list[int]:
    """Plans with anything on their timeline from ``since`` (to before ``until``), by id."""
    query = (
        select(EventRecord.plan_id).where(EventRecord.at >= since).distinct().order_by(EventRecord.plan_id)
    )
    if until is not None:
        query = query.where(EventRecord.at < until)
    with db.session() as session:
        return list(session.scalars(query))


def export_timelines(
    *,
    db: Database,
    config: BotConfig,
    plans: Sequence[int | str],
    fmt: Format,
    out: Path,
    name: str | None = None,
) -> Iterator[Path]:
    """Write each plan's files of ``fmt`` into ``out``; yields each path once written. ``name``: what to
    call the files instead of by each plan (the demo's one example)."""
    out.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        with db.session() as session:
            story = gather(session, plan, config)
        for file in export_files(story, fmt, name=name):
            path = out / file.name
            path.write_bytes(file.content)
            yield path


def chosen_plans(
    db: Database, *, plan: str | None, every: bool, since: str | None, until: str | None
) -> list[int | str]:
    """The plan asked for, or with ``--all`` every plan of the period."""
    if every == (plan is not None):
        raise UserError("give a plan id, or --all --since DATE")
    if plan is not None:
        return [plan]
    if since is None:
        raise UserError("--all: say from when, --since DATE (UTC)")
    start = parse_moment(since, "--since")
    return list(plans_between(db, start, parse_moment(until, "--until") if until else None))
