"""Fixtures of the runner's tests: the example chat schema on the test server, and its client tools."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bot.demo import load_example_schema
from bot.embedded import client_tool
from tests.conftest import EXAMPLES


@pytest.fixture
def nchat_dsn(target_dsn: str) -> str:
    """A fresh database holding the example schema ``nchat`` and its seed rows."""
    load_example_schema(target_dsn, EXAMPLES)
    return target_dsn


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
