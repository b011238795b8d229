"""Connections to the target database, and its errors worded without the DSN's secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bot.execution.errors import StepFailed, StepTimeout
from bot.execution.output import shown

CONNECT_TIMEOUT_SECONDS = 10


def scalar(
    conn: psycopg.Connection, query: str | sql.SQL | sql.Composed, params: Params | None = None
) -> Any:
    """The first value of the query's first row; None when it returns no row."""
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """The DSN's password, to mask wherever the server or a tool might echo it."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:  # not a DSN at all: redact()'s rules are all there is
        return ()
    return (str(password),) if password else ()


def split_password(dsn: str) -> tuple[str, str | None]:
    """The DSN without its password (what may stand on a command line), and the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as err:
        raise StepFailed(f"invalid DSN: {shown(str(err), dsn_secrets(dsn))}") from None
    password = params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), (
        str(password) if password else None
    )


def error_text(err: BaseException, dsn: str) -> str:
    """A server error redacted, its SQLSTATE (when there is one) after its first line."""
    sqlstate = getattr(err, "sqlstate", None)
    first, newline, rest = shown(str(err), dsn_secrets(dsn)).partition("\n")
    return f"{first} (SQLSTATE {sqlstate}){newline}{rest}" if sqlstate else first + newline + rest


def connect(dsn: str, *, autocommit: bool = True, application_name: str | None = None) -> psycopg.Connection:
    """A new connection to the target; failing, a StepFailed that does not show the password."""
    extra: dict[str, Any] = {"application_name": application_name} if application_name else {}
    try:
        return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=autocommit, **extra)
    except psycopg.Error as err:
        raise StepFailed(f"cannot connect to the target: {error_text(err, dsn)}") from None


@contextmanager
def connected(
    dsn: str, *, autocommit: bool = True, application_name: str | None = None
) -> Iterator[psycopg.Connection]:
    """A connection for one step, closed afterwards; a database error in the step becomes StepFailed.

    A statement cancelled by its ``statement_timeout`` becomes StepTimeout.
    """
    with connect(dsn, autocommit=autocommit, application_name=application_name) as conn:
        try:
            yield conn
        except psycopg.errors.QueryCanceled as err:
            raise StepTimeout(error_text(err, dsn)) from None
        except psycopg.Error as err:
            raise StepFailed(error_text(err, dsn)) from None


def set_timeouts(conn: psycopg.Connection, timeouts: tuple[str, str], *, local: bool) -> None:
    """Set (lock_timeout, statement_timeout) for the session, or ``local``ly for the open transaction."""
    lock_timeout, statement_timeout = timeouts
    conn.execute(
        "SELECT set_config('lock_timeout', %s, %s), set_config('statement_timeout', %s, %s)",
        (lock_timeout, local, statement_timeout, local),
    )
