"""Scratch copies for rehearsals: by template, dump or replay, the template refused while someone is
connected to the source, and the copy always dropped."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bot.embedded import dsn_for_database
from bot.execution.errors import StepFailed
from bot.execution.scratch import Strategy, TemplateUnavailable, scratch_database
from bot.sql.fingerprint import fingerprint_diff, schema_fingerprint
from tests.conftest import EXAMPLES
from tests.execution.conftest import with_password

COUNT_MESSAGES = "SELECT count(*) FROM nchat.nchat_messages"


def exists(admin_dsn: str, name: str) -> bool:
    with psycopg.connect(admin_dsn) as conn:
        return conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (1,)


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]


def fingerprint(dsn: str) -> object:
    with psycopg.connect(dsn) as conn:
        return schema_fingerprint(conn)


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """Scratch copies of this test only, whatever else runs on the server."""
    name = f"t_scratch_{uuid.uuid4().hex[:8]}_"
    monkeypatch.setattr("bot.execution.scratch.PREFIX", name)
    return name


def leftovers(admin_dsn: str, prefix: str) -> list[str]:
    with psycopg.connect(admin_dsn) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))
        ]


@pytest.mark.parametrize("strategy", ["template", "dump"])
def test_a_copy_has_the_schema_and_rows_and_is_dropped_after_a_failure(
    pg_admin_dsn: str, nchat_dsn: str, strategy: str
) -> None:
    with (
        pytest.raises(RuntimeError, match="the rehearsal broke"),
        scratch_database(pg_admin_dsn, nchat_dsn, strategy) as copy,
    ):
        assert copy.strategy == strategy and copy.has_data and copy.fallbacks == ()
        assert exists(pg_admin_dsn, copy.name)
        assert count(copy.dsn, COUNT_MESSAGES) == count(nchat_dsn, COUNT_MESSAGES) == 20000
        assert fingerprint_diff(fingerprint(nchat_dsn), fingerprint(copy.dsn)) == []  # type: ignore[arg-type]
        raise RuntimeError("the rehearsal broke")
    assert not exists(pg_admin_dsn, copy.name)


def test_a_session_on_the_source_rules_the_template_out_and_the_dump_takes_over(
    pg_admin_dsn: str, nchat_dsn: str
) -> None:
    with psycopg.connect(nchat_dsn, application_name="chat-web-7") as session:
        with (
            pytest.raises(TemplateUnavailable, match=r"1 other session.*chat-web-7"),
            scratch_database(pg_admin_dsn, nchat_dsn, "template"),
        ):
            pass
        heard: list[str] = []
        with scratch_database(pg_admin_dsn, nchat_dsn, ["template", "dump"], progress=heard.append) as copy:
            assert copy.strategy is Strategy.DUMP
            (why,) = copy.fallbacks
            assert why.startswith("template: 1 other session(s) connected to") and "chat-web-7" in why
            assert count(copy.dsn, COUNT_MESSAGES) == 20000
        assert heard[0].startswith("no scratch copy by template: 1 other session(s)")
        session.execute("SELECT 1")  # still connected: nobody was cut off
    assert not exists(pg_admin_dsn, copy.name)


def test_the_template_works_when_the_admin_dsn_names_the_source(pg_admin_dsn: str, nchat_dsn: str) -> None:
    source = conninfo_to_dict(nchat_dsn)["dbname"]
    with scratch_database(dsn_for_database(pg_admin_dsn, str(source)), nchat_dsn, "template") as copy:
        assert copy.strategy is Strategy.TEMPLATE


def test_a_schema_only_dump_has_no_rows(pg_admin_dsn: str, nchat_dsn: str) -> None:
    with scratch_database(pg_admin_dsn, nchat_dsn, "dump", schema_only=True) as copy:
        assert not copy.has_data
        assert count(copy.dsn, COUNT_MESSAGES) == 0
        assert fingerprint_diff(fingerprint(nchat_dsn), fingerprint(copy.dsn)) == []  # type: ignore[arg-type]


def test_replay_applies_the_earlier_migrations_to_an_empty_database(
    pg_admin_dsn: str, nchat_dsn: str
) -> None:
    schema = (EXAMPLES / "schema.sql").read_text()
    earlier = "BEGIN;\nALTER TABLE nchat.nchat_users ADD COLUMN nick text;\nCOMMIT;\n" + (
        "CREATE INDEX CONCURRENTLY idx_nick ON nchat.nchat_users (nick);"
    )
    with scratch_database(pg_admin_dsn, nchat_dsn, "replay", migrations=[schema, earlier]) as copy:
        assert not copy.has_data and count(copy.dsn, COUNT_MESSAGES) == 0
        assert fingerprint_diff(fingerprint(nchat_dsn), fingerprint(copy.dsn)) == [  # type: ignore[arg-type]
            "column nchat.nchat_users.nick added: text",
            "index nchat.idx_nick added: CREATE INDEX idx_nick ON nchat.nchat_users USING btree (nick)",
        ]


def test_a_replay_that_fails_says_which_migration_and_leaves_nothing(
    pg_admin_dsn: str, nchat_dsn: str, prefix: str
) -> None:
    schema = (EXAMPLES / "schema.sql").read_text()
    broken = "ALTER TABLE nchat.nchat_users DROP COLUMN no_such_column;"
    with (
        pytest.raises(StepFailed, match=r"migration 2 of 2: column \"no_such_column\" .* does not exist"),
        scratch_database(pg_admin_dsn, nchat_dsn, "replay", migrations=[schema, broken]),
    ):
        pass
    assert leftovers(pg_admin_dsn, prefix) == []


def test_when_no_strategy_works_each_reason_is_given_without_the_password(
    pg_admin_dsn: str, prefix: str
) -> None:
    missing, password = with_password(dsn_for_database(pg_admin_dsn, "no_such_database"))
    with pytest.raises(StepFailed) as raised, scratch_database(pg_admin_dsn, missing, ["template", "dump"]):
        pass
    message = raised.value.message
    template, _, dump = message.partition("; dump: ")
    assert template == (
        'no scratch copy could be made: template: template database "no_such_database" does not exist '
        "(SQLSTATE 3D000)"
    )
    assert dump.startswith("pg_dump | pg_restore: ") and 'database "no_such_database" does not exist' in dump
    assert password not in message
    assert leftovers(pg_admin_dsn, prefix) == []
