"""Whether point-in-time recovery is possible, judged from the target's settings and archiver."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.execution.pitr import Archiver, assess, pitr_status

ARCHIVING = {"wal_level": "replica", "archive_mode": "on", "archive_command": "cp %p /archive/%f"}
EARLY, LATE = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC)


def test_the_test_server_archives_nothing(target_dsn: str) -> None:
    status = pitr_status(target_dsn)
    assert not status.possible
    assert status.evidence.startswith("PITR not possible: archive_mode is off")
    assert "wal_level = replica" in status.evidence and "archiver: 0 WAL file(s) archived" in status.evidence


def test_archiving_that_works_makes_pitr_possible() -> None:
    status = assess(ARCHIVING, Archiver(12, LATE, 1, EARLY))
    assert status.possible
    assert (
        status.evidence.startswith("PITR possible (")
        and "archive_command = 'cp %p /archive/%f'" in status.evidence
    )


def test_an_archive_library_is_somewhere_to_archive_to() -> None:
    assert assess({**ARCHIVING, "archive_command": "", "archive_library": "basic_archive"}, None).possible


def test_archiving_whose_latest_attempt_failed_is_not_enough() -> None:
    status = assess(ARCHIVING, Archiver(12, EARLY, 3, LATE))
    assert not status.possible and "the latest archiving attempt failed" in status.evidence


def test_minimal_wal_and_no_command_are_named_and_secrets_in_the_command_hidden() -> None:
    status = assess({"wal_level": "minimal", "archive_mode": "always", "archive_command": "(disabled)"}, None)
    assert status.evidence.startswith(
        "PITR not possible: wal_level is minimal, no archive_command or archive_library"
    )
    secret = assess({**ARCHIVING, "archive_command": "push %p --password=hunter22"}, None)
    assert secret.possible and "hunter22" not in secret.evidence
