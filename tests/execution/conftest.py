"""Fixtures of the runner's tests: the example chat schema on the test server, and its client tools."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bot.demo import load_example_schema
from bot.embedded import client_tool, create_database, drop_database
from bot.execution.apply import ApplyResult, apply_segments
from bot.execution.segments import Segment, SqlStatement
from tests.conftest import EXAMPLES


@pytest.fixture(scope="session")
def nchat_template(pg_admin_dsn: str) -> Iterator[str]:
    """A database with the example schema ``nchat`` and its seed rows, loaded once, to copy from."""
    name = f"nchat_template_{uuid.uuid4().hex[:12]}"
    load_example_schema(create_database(pg_admin_dsn, name), EXAMPLES)
    yield name
    drop_database(pg_admin_dsn, name)


@pytest.fixture
def nchat_dsn(pg_admin_dsn: str, nchat_template: str) -> Iterator[str]:
    """A fresh database with the example schema and its rows (a copy of the template), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield create_database(pg_admin_dsn, name, template=nchat_template)
    drop_database(pg_admin_dsn, name)


@pytest.fixture(scope="session")
def pg_dump() -> str:
    return client_tool("pg_dump")


@pytest.fixture(scope="session")
def pg_restore() -> str:
    return client_tool("pg_restore")


def with_password(dsn: str) -> tuple[str, str]:
    """``dsn`` with a password in it, and the password: its own, or one the embedded server (which trusts
    its local clients) receives and ignores."""
    params = conninfo_to_dict(dsn)
    if not params.get("password"):
        params["password"] = "hunter2-not-shown"
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), str(params["password"])


@contextmanager
def table_locked(dsn: str, table: str) -> Iterator[None]:
    """Another session holds ACCESS EXCLUSIVE on ``table`` until the block ends."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


APP = "migrate-bot plan #7"


def segment(transactional: bool, *statements: tuple[int, str]) -> Segment:
    """A segment of (statement index, SQL) pairs, as the plan stores them."""
    return Segment(transactional, tuple(SqlStatement(sql, index, index + 1) for index, sql in statements))


def apply(dsn: str, segments: list[Segment], **options: object) -> ApplyResult:
    """``apply_segments`` with quick test settings, any of them overridden by ``options``."""
    settings: dict[str, object] = {
        "lock_timeout": "5s",
        "statement_timeout": "30s",
        "lock_retries": 0,
        "retry_backoff_seconds": 0.1,
        "application_name": APP,
    }
    return apply_segments(dsn, segments, **{**settings, **options})  # type: ignore[arg-type]
