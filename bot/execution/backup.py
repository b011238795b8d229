"""The guide's backup step: a pg_dump of the target before the migration, checked, and the way back.

The password travels in ``PGPASSWORD``, never on the command line (``ps`` shows every argument). A backup
is never overwritten, and one that failed half-way is removed, so a file that exists is a whole dump.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg

from bot.embedded import create_database, drop_database
from bot.execution.errors import StepFailed
from bot.execution.integrity import row_counts
from bot.execution.runbook import CommandResult, run_command
from bot.execution.target import error_text, split_password
from bot.sql.rollback import split_name

# How often a running dump reports its size.
PROGRESS_EVERY_SECONDS = 10.0
T = TypeVar("T")


@dataclass(frozen=True)
class Backup:
    path: Path  # a file (custom format) or a directory (directory format)
    format: str  # "custom" or "directory"
    size_bytes: int
    duration_seconds: float


@dataclass(frozen=True)
class BackupCheck:
    path: Path
    entries: int  # entries in the archive's table of contents
    found: tuple[str, ...]  # the objects asked for, each with its definition and its data in the archive


@dataclass(frozen=True)
class Restore:
    path: Path
    duration_seconds: float
    output: str  # what pg_restore said, trimmed and redacted


def backup(
    dsn: str,
    directory: Path,
    name: str,
    *,
    pg_dump: str,
    jobs: int = 1,
    timeout: float,
    progress: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Backup:
    """Dump the target to ``directory/<name>.dump`` (custom format), or with ``jobs`` > 1 to the directory
    ``directory/<name>.dir`` (directory format, dumped by that many parallel jobs).

    ``progress`` hears the size written every 10 s. Raises StepFailed (StepTimeout, StepCancelled) with
    pg_dump's trimmed output; nothing is left behind then.
    """
    directory.mkdir(parents=True, exist_ok=True)
    parallel = jobs > 1
    path = directory / (f"{name}.dir" if parallel else f"{name}.dump")
    if path.exists():
        raise StepFailed(f"{path} exists already: a backup is never overwritten")
    fmt = "directory" if parallel else "custom"
    argv = [pg_dump, f"--format={fmt}", f"--file={path}", *([f"--jobs={jobs}"] if parallel else [])]
    last_report = 0.0

    def watch(elapsed: float) -> None:
        nonlocal last_report
        if progress and elapsed - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = elapsed
            progress(f"pg_dump: {_size(path) / 1e6:.1f} MB written after {elapsed:.0f} s")

    try:
        result = _run_against(argv, dsn, timeout=timeout, cancelled=cancelled, watch=watch)
    except StepFailed:
        _remove(path)
        raise
    return Backup(path, fmt, _size(path), result.duration_seconds)


def verify_backup(
    backup_path: Path, *, pg_restore: str, objects: Sequence[str], timeout: float = 300
) -> BackupCheck:
    """The archive's table of contents reads (``pg_restore --list``) and holds every table of ``objects``
    (``schema.table`` as the analysis names them; unqualified, in any schema): definition and data.

    Raises StepFailed naming what is missing.
    """
    with tempfile.TemporaryDirectory(prefix="migrate-bot-toc-") as tmp:
        listing = Path(tmp) / "toc"
        run_command([pg_restore, "--list", f"--file={listing}", str(backup_path)], timeout=timeout)
        # "<dump id>; <catalog oid> <oid> <type> <schema> <name> <owner>": keep "<type> …"
        entries = [
            line.split(" ", 3)[3]
            for line in listing.read_text(encoding="utf-8", errors="replace").splitlines()
            if line and not line.startswith(";")
        ]
    missing = [
        f"{table} ({what})"
        for table in objects
        for kind, what in (("TABLE", "definition"), ("TABLE DATA", "data"))
        if not _listed(entries, kind, *split_name(table))
    ]
    if missing:
        raise StepFailed(f"the backup {backup_path.name} lacks {', '.join(missing)}")
    return BackupCheck(backup_path, len(entries), tuple(objects))


def restore(
    backup_path: Path,
    dsn: str,
    *,
    pg_restore: str,
    jobs: int = 1,
    timeout: float,
    cancelled: Callable[[], bool] | None = None,
) -> Restore:
    """The guide's emergency restore: ``pg_restore --clean --if-exists``, each object of the backup dropped
    and recreated with its data. Objects the backup does not have (a table the migration created) stay.

    With one job it runs as a single transaction: a restore that fails (an object the migration added
    depends on one it must drop) changes nothing. Parallel jobs cannot share a transaction; a failure
    then leaves whatever was restored so far. Raises StepFailed (StepTimeout, StepCancelled) with
    pg_restore's trimmed output.
    """
    parallel = [f"--jobs={jobs}"] if jobs > 1 else ["--single-transaction"]
    argv = [pg_restore, "--clean", "--if-exists", *parallel, str(backup_path)]
    result = _run_against(argv, dsn, timeout=timeout, cancelled=cancelled)
    return Restore(backup_path, result.duration_seconds, result.output)


def restore_check(
    backup_path: Path,
    dsn: str,
    admin_dsn: str,
    *,
    pg_restore: str,
    tables: Sequence[str],
    jobs: int = 1,
    timeout: float,
) -> dict[str, tuple[int | None, int | None]]:
    """Restore the backup into a scratch database on ``admin_dsn``'s server (always dropped afterwards) and
    compare each table's exact row count there with the target's: {table: (in target, in restore)}.

    Raises StepFailed when the restore fails or a count differs (None: no such table on that side).
    """
    scratch = f"migrate_bot_restore_check_{uuid.uuid4().hex[:12]}"
    try:
        scratch_dsn = _admin(create_database, admin_dsn, scratch)
        restore(backup_path, scratch_dsn, pg_restore=pg_restore, jobs=jobs, timeout=timeout)
        in_target, in_restore = row_counts(dsn, tables), row_counts(scratch_dsn, tables)
    finally:
        _admin(drop_database, admin_dsn, scratch)
    counts = {table: (in_target[table], in_restore[table]) for table in tables}
    differ = [f"{table}: {t} in the target, {r} restored" for table, (t, r) in counts.items() if t != r]
    if differ:
        raise StepFailed(f"the restored backup {backup_path.name} differs: {'; '.join(differ)}")
    return counts


def _admin(action: Callable[[str, str], T], admin_dsn: str, dbname: str) -> T:
    """Create or drop the scratch database; a server error as StepFailed, without the password."""
    try:
        return action(admin_dsn, dbname)
    except psycopg.Error as err:
        raise StepFailed(f"scratch database {dbname}: {error_text(err, admin_dsn)}") from None


def _run_against(
    argv: list[str],
    dsn: str,
    *,
    timeout: float,
    cancelled: Callable[[], bool] | None = None,
    watch: Callable[[float], None] | None = None,
) -> CommandResult:
    """Run a client tool against ``dsn``: ``--dbname`` without the password, which goes in PGPASSWORD."""
    conninfo, password = split_password(dsn)
    return run_command(
        [argv[0], f"--dbname={conninfo}", *argv[1:]],
        timeout=timeout,
        env={"PGPASSWORD": password} if password else None,
        secrets=(password,) if password else (),
        cancelled=cancelled,
        watch=watch,
    )


def _listed(entries: Sequence[str], kind: str, schema: str | None, table: str) -> bool:
    """A TOC entry of ``kind`` ("TABLE", "TABLE DATA") names the table."""
    head = f"{kind} "
    for entry in entries:
        if entry.startswith(head):
            entry_schema, _, rest = entry[len(head) :].partition(" ")
            if schema in (None, entry_schema) and rest.startswith(f"{table} "):
                return True
    return False


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
