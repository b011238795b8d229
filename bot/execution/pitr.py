"""Whether the target can be recovered to a point in time: WAL archiving configured and working."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.execution.output import shown
from bot.execution.target import connected

SETTINGS = ("wal_level", "archive_mode", "archive_command", "archive_library")


@dataclass(frozen=True)
class Pitr:
    possible: bool
    evidence: str  # the settings and the archiver's record, as read


@dataclass(frozen=True)
class Archiver:
    archived_count: int
    last_archived_time: datetime | None
    failed_count: int
    last_failed_time: datetime | None


def pitr_status(dsn: str) -> Pitr:
    """Read the archiving settings and ``pg_stat_archiver`` of the target and judge them."""
    with connected(dsn) as conn:
        settings = dict(
            conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),))
        )
        row = conn.execute(
            "SELECT archived_count, last_archived_time, failed_count, last_failed_time FROM pg_stat_archiver"
        ).fetchone()
    return assess(settings, Archiver(*row) if row else None)


def assess(settings: Mapping[str, str], archiver: Archiver | None) -> Pitr:
    """PITR needs WAL at ``replica`` or above, ``archive_mode`` on, somewhere to archive to, and an
    archiver whose latest attempt did not fail."""
    level, mode = settings.get("wal_level", ""), settings.get("archive_mode", "")
    command = settings.get("archive_command", "")
    library = settings.get("archive_library", "")
    archives = bool(library) or command not in ("", "(disabled)")
    evidence = [
        f"wal_level = {level}",
        f"archive_mode = {mode}",
        f"archive_command = {shown(command)!r}" if command else "archive_command unset",
        f"archive_library = {library!r}" if library else "archive_library unset",
    ]
    failing = False
    if archiver:
        evidence.append(
            f"archiver: {archiver.archived_count} WAL file(s) archived (last: "
            f"{archiver.last_archived_time or 'never'}), {archiver.failed_count} failure(s) (last: "
            f"{archiver.last_failed_time or 'never'})"
        )
        failing = archiver.last_failed_time is not None and (
            archiver.last_archived_time is None or archiver.last_failed_time > archiver.last_archived_time
        )
    reasons = [
        *([f"wal_level is {level or 'unknown'}"] if level not in ("replica", "logical") else []),
        *(["archive_mode is off"] if mode not in ("on", "always") else []),
        *(["no archive_command or archive_library"] if not archives else []),
        *(["the latest archiving attempt failed"] if failing else []),
    ]
    verdict = "PITR possible" if not reasons else f"PITR not possible: {', '.join(reasons)}"
    return Pitr(not reasons, f"{verdict} ({'; '.join(evidence)})")
