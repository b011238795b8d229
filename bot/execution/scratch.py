"""A scratch copy of the target to rehearse a migration on, made one of three ways and always dropped.

- ``template``: ``CREATE DATABASE … TEMPLATE`` the target, on the target's server. A file copy: by far the
  fastest, but PostgreSQL refuses it while any other session is connected to the target (and new
  sessions wait while it copies), so who is connected is checked first and named: a quiet target only.
  ``STRATEGY FILE_COPY`` (PostgreSQL 15+) copies the files after a checkpoint instead of writing the whole
  database into the WAL (and to every standby).
- ``dump``: ``pg_dump`` of the target piped into ``pg_restore`` (with its data, or ``schema_only``). Works
  while the application is connected, and from another server; costs a read of everything and a rebuild
  of every index. Owners and privileges are left out: the copy belongs to the admin role.
- ``replay``: an empty database where the migrations before this one are applied in order, as psql runs a
  file. No data, and the schema the files describe rather than the one the target has.

Strategies are tried in the order given, and why each one could not be used is kept.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from bot.embedded import client_tool, create_database, drop_database, dsn_for_database
from bot.execution.connections import Session
from bot.execution.errors import StepCancelled, StepFailed
from bot.execution.runbook import run_command
from bot.execution.target import connected, error_text, split_password
from bot.sql.model import SqlSyntaxError
from bot.sql.parse import parse_statements

PREFIX = "migrate_bot_scratch_"
FILE_COPY_SINCE = 150000
MAINTENANCE_DATABASE = "postgres"
SESSIONS_SHOWN = 5
SESSION_LOOKS, SESSION_LOOK_PAUSE = 5, 0.1
# Sessions that keep CREATE DATABASE … TEMPLATE from copying a database (autovacuum workers it stops).
SESSIONS = """
SELECT usename, application_name, client_addr::text, state, backend_start FROM pg_stat_activity
WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'
ORDER BY backend_start
"""
# Runs pg_dump into pg_restore, each with its own password, under run_command's guard and time limit.
PIPE = """
import os, subprocess, sys
cut = sys.argv.index("--")
secrets = ("PGPASSWORD", "MIGRATE_BOT_DUMP_PASSWORD", "MIGRATE_BOT_RESTORE_PASSWORD")
base = {k: v for k, v in os.environ.items() if k not in secrets}
def start(argv, secret, **io):
    password = os.environ.get(secret)
    return subprocess.Popen(argv, env={**base, **({"PGPASSWORD": password} if password else {})}, **io)
dump = start(sys.argv[1:cut], "MIGRATE_BOT_DUMP_PASSWORD", stdout=subprocess.PIPE)
restore = start(sys.argv[cut + 1:], "MIGRATE_BOT_RESTORE_PASSWORD", stdin=dump.stdout)
dump.stdout.close()  # pg_restore alone reads the pipe: pg_dump stops when pg_restore does
codes = {"pg_restore": restore.wait(), "pg_dump": dump.wait()}
failed = [f"{tool} exited with code {code}" for tool, code in codes.items() if code]
if failed:
    print("; ".join(failed), flush=True)
    sys.exit(1)
"""


class Strategy(StrEnum):
    TEMPLATE = "template"
    DUMP = "dump"
    REPLAY = "replay"


class TemplateUnavailable(StepFailed):
    """The source cannot be a template now: other sessions are connected to it."""


@dataclass(frozen=True)
class Scratch:
    name: str
    strategy: Strategy
    seconds: float  # to make the copy
    has_data: bool  # the target's rows are there (template, or dump without schema_only)
    fallbacks: tuple[str, ...]  # why each strategy tried before this one was not used
    dsn: str = field(repr=False)  # the admin's credentials: never shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy": self.strategy.value,
            "seconds": round(self.seconds, 3),
            "has_data": self.has_data,
            "fallbacks": list(self.fallbacks),
        }


@contextmanager
def scratch_database(
    admin_dsn: str,
    source_dsn: str,
    strategy: Strategy | str | Sequence[Strategy | str] = (Strategy.TEMPLATE, Strategy.DUMP),
    *,
    schema_only: bool = False,
    migrations: Sequence[str] = (),
    pg_dump: str | None = None,
    pg_restore: str | None = None,
    timeout: float = 3600,
    progress: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[Scratch]:
    """A new database on ``admin_dsn``'s server (a superuser DSN) copied from ``source_dsn`` by the first of
    ``strategy`` that works, dropped when the block ends, whatever happens in it.

    ``schema_only`` applies to ``dump``; ``migrations`` (SQL texts, in order) to ``replay``; ``timeout``
    bounds pg_dump | pg_restore. Raises TemplateUnavailable when ``template`` alone was asked for and
    sessions are connected to the source, StepFailed (each strategy's reason) when none worked, and
    StepCancelled.
    """
    strategies = [Strategy(strategy)] if isinstance(strategy, str) else [Strategy(s) for s in strategy]
    name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    makers: dict[Strategy, Callable[[], str]] = {
        Strategy.TEMPLATE: lambda: _from_template(admin_dsn, source_dsn, name),
        Strategy.DUMP: lambda: _from_dump(
            admin_dsn,
            source_dsn,
            name,
            schema_only=schema_only,
            tools=(_tool("pg_dump", pg_dump), _tool("pg_restore", pg_restore)),
            timeout=timeout,
            cancelled=cancelled,
        ),
        Strategy.REPLAY: lambda: _from_replay(admin_dsn, name, migrations),
    }
    fallbacks: list[str] = []
    try:
        for chosen in strategies:
            started = time.monotonic()
            try:
                dsn = makers[chosen]()
            except StepCancelled:
                raise
            except StepFailed as err:
                drop_scratch(admin_dsn, name)
                if len(strategies) == 1:
                    raise
                fallbacks.append(f"{chosen.value}: {err.message}")
                if progress:
                    progress(f"no scratch copy by {chosen.value}: {err.message}")
                continue
            has_data = chosen is Strategy.TEMPLATE or (chosen is Strategy.DUMP and not schema_only)
            scratch = Scratch(name, chosen, time.monotonic() - started, has_data, tuple(fallbacks), dsn)
            if progress:
                progress(f"scratch copy {name} made by {chosen.value} in {scratch.seconds:.1f} s")
            yield scratch
            return
        raise StepFailed("no scratch copy could be made: " + "; ".join(fallbacks))
    finally:
        drop_scratch(admin_dsn, name)


def _from_template(admin_dsn: str, source_dsn: str, name: str) -> str:
    source = str(conninfo_to_dict(source_dsn).get("dbname") or "")
    if not source:
        raise StepFailed("the source DSN names no database to use as a template")
    # our own session must not be one of those connected to the source
    same = conninfo_to_dict(admin_dsn).get("dbname") == source
    admin = dsn_for_database(admin_dsn, MAINTENANCE_DATABASE) if same else admin_dsn
    with connected(admin) as conn:
        for _ in range(SESSION_LOOKS):  # a session closing as we look is gone a moment later
            sessions = [Session(*row) for row in conn.execute(SESSIONS, (source,)).fetchall()]
            if not sessions:
                break
            time.sleep(SESSION_LOOK_PAUSE)
        else:
            raise TemplateUnavailable(_sessions_named(source, sessions))
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(source)
        )
        if conn.info.server_version >= FILE_COPY_SINCE:
            create = sql.SQL("{} STRATEGY FILE_COPY").format(create)
        try:
            conn.execute(create)
        except psycopg.errors.ObjectInUse as err:  # a session connected between the check and the copy
            raise TemplateUnavailable(f"{source} is in use: {error_text(err, admin_dsn)}") from None
    return dsn_for_database(admin_dsn, name)


def _sessions_named(source: str, sessions: list[Session]) -> str:
    named = "; ".join(s.describe() for s in sessions[:SESSIONS_SHOWN])
    more = f"; and {len(sessions) - SESSIONS_SHOWN} more" if len(sessions) > SESSIONS_SHOWN else ""
    return (
        f"{len(sessions)} other session(s) connected to {source} ({named}{more}): "
        "CREATE DATABASE … TEMPLATE copies a database only when nobody else is connected to it"
    )


def _from_dump(
    admin_dsn: str,
    source_dsn: str,
    name: str,
    *,
    schema_only: bool,
    tools: tuple[str, str],
    timeout: float,
    cancelled: Callable[[], bool] | None,
) -> str:
    dsn = _create(admin_dsn, name, template="template0")  # nothing of template1 to collide with the dump
    source, source_password = split_password(source_dsn)
    scratch, scratch_password = split_password(dsn)
    pg_dump, pg_restore = tools
    argv = [
        *(sys.executable, "-c", PIPE),
        *(pg_dump, f"--dbname={source}", "--format=custom", "--compress=0"),
        *(["--schema-only"] if schema_only else []),
        "--",
        *(pg_restore, f"--dbname={scratch}", "--no-owner", "--no-privileges", "--exit-on-error"),
    ]
    passwords = {
        "MIGRATE_BOT_DUMP_PASSWORD": source_password,
        "MIGRATE_BOT_RESTORE_PASSWORD": scratch_password,
    }
    env = {key: value for key, value in passwords.items() if value}
    try:
        run_command(argv, timeout=timeout, env=env, secrets=tuple(env.values()), cancelled=cancelled)
    except StepFailed as err:  # run_command names the interpreter that runs the pipe
        raise type(err)(f"pg_dump | pg_restore: {err.message}") from None
    return dsn


def _from_replay(admin_dsn: str, name: str, migrations: Sequence[str]) -> str:
    dsn = _create(admin_dsn, name)
    with connected(dsn) as conn:
        for number, text in enumerate(migrations, 1):
            where = f"migration {number} of {len(migrations)}"
            try:
                for item in parse_statements(text):  # one at a time, as psql runs a file
                    conn.execute(item.statement.sql)
            except (psycopg.Error, SqlSyntaxError) as err:
                raise StepFailed(f"{where}: {error_text(err, dsn)}") from None
            if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
                raise StepFailed(f"{where} leaves a transaction open")
    return dsn


def _create(admin_dsn: str, name: str, *, template: str | None = None) -> str:
    try:
        return create_database(admin_dsn, name, template=template)
    except psycopg.Error as err:
        raise StepFailed(f"scratch database {name}: {error_text(err, admin_dsn)}") from None


def drop_scratch(admin_dsn: str, name: str) -> None:
    """Drop a scratch database (connections to it closed first); StepFailed when it cannot be."""
    try:
        drop_database(admin_dsn, name)
    except psycopg.Error as err:
        raise StepFailed(f"scratch database {name} not dropped: {error_text(err, admin_dsn)}") from None


def _tool(name: str, configured: str | None) -> str:
    try:
        return client_tool(name, configured)
    except FileNotFoundError as err:
        raise StepFailed(str(err)) from None
