"""Connections to the target: DSN secrets kept out of command lines and messages, errors worded as steps."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from bot.execution.errors import StepFailed, StepTimeout
from bot.execution.target import connected, dsn_secrets, split_password
from tests.execution.conftest import with_password


def test_the_password_is_split_off_a_url_and_a_key_value_dsn() -> None:
    conninfo, password = split_password("postgresql://deploy:s3cr%40t@db.internal:5433/chat?sslmode=require")
    assert password == "s3cr@t" and "s3cr" not in conninfo
    assert "host=db.internal" in conninfo and "port=5433" in conninfo and "sslmode=require" in conninfo
    conninfo, password = split_password("host=db user=deploy password='p w' dbname=chat")
    assert (
        conninfo_to_dict(conninfo) == {"host": "db", "user": "deploy", "dbname": "chat"} and password == "p w"
    )
    assert split_password("host=db dbname=chat")[1] is None
    assert dsn_secrets("host=db password=hunter22") == ("hunter22",) and dsn_secrets("host=db") == ()


def test_an_invalid_dsn_is_refused_without_showing_it() -> None:
    with pytest.raises(StepFailed, match="invalid DSN") as failed:
        split_password("host=db password=hunter22 nonsense")
    assert "hunter22" not in failed.value.message


def test_a_refused_connection_names_no_password(target_dsn: str) -> None:
    dsn, password = with_password(target_dsn)
    with (
        pytest.raises(StepFailed, match="cannot connect to the target") as failed,
        connected(dsn.replace("dbname=", "dbname=no_such_db_", 1)),
    ):
        pass
    assert "no_such_db_" in failed.value.message and password not in failed.value.message


def test_errors_inside_a_step_become_step_failures(target_dsn: str) -> None:
    with pytest.raises(StepTimeout, match="statement timeout"), connected(target_dsn) as conn:
        conn.execute("SET statement_timeout = '50ms'")
        conn.execute("SELECT pg_sleep(5)")
    with (
        pytest.raises(StepFailed, match=r"^relation \"nope\" does not exist \(SQLSTATE 42P01\)\nLINE 1"),
        connected(target_dsn) as conn,
    ):
        conn.execute("SELECT * FROM nope")
