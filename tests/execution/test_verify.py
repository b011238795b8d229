"""Verification after the migration: each object it creates, changes or drops, read back from the catalog."""

from __future__ import annotations

import psycopg
import pytest

from bot.execution.checks import Check, Outcome
from bot.execution.verify import verify_migration
from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import OfflineCatalog
from bot.sql.model import Analysis
from tests.conftest import EXAMPLES

P, F, N = Outcome.PASSED, Outcome.FAILED, Outcome.NOT_CHECKED


def analysis(sql: str) -> Analysis:
    return analyze(sql, catalog=OfflineCatalog(180000), policy=load_policy().complexity)


def verify(dsn: str, sql: str) -> list[Check]:
    return verify_migration(dsn, analysis(sql).operations)


def run(dsn: str, sql: str) -> None:
    """Each statement on its own in autocommit, as a file without BEGIN runs."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in analysis(sql).statements:
            conn.execute(statement.sql)


def outcomes(checks: list[Check]) -> dict[tuple[str, str], Outcome]:
    return {(c.kind, c.subject): c.outcome for c in checks}


def example(name: str) -> str:
    return (EXAMPLES / "migrations" / name).read_text()


def test_the_guides_sample_is_all_there_after_it_ran_and_nothing_passes_before(nchat_dsn: str) -> None:
    sql = example("054_add_message_bookmarks.sql")
    before = verify(nchat_dsn, sql)
    assert {c.outcome for c in before} == {F, N}
    run(nchat_dsn, sql)
    after = outcomes(verify(nchat_dsn, sql))
    table = "nchat.nchat_message_bookmarks"
    assert after == {
        ("table", f"table {table}"): P,
        **{
            ("column", f"column {table}.{c}"): P
            for c in ("id", "message_id", "user_id", "notes", "created_at")
        },
        ("unnamed_constraint", f"a foreign key constraint on {table} (message_id)"): P,
        ("unnamed_constraint", f"a foreign key constraint on {table} (user_id)"): P,
        ("index", "index nchat.idx_message_bookmarks_user"): P,
        ("index", "index nchat.idx_message_bookmarks_message"): P,
        ("index_valid", f"indexes of {table}"): P,
        ("operation", f"comment on table {table}"): N,
    }


def test_objects_are_expected_under_their_latest_names(nchat_dsn: str) -> None:
    sql = """
        ALTER TABLE nchat.nchat_users ADD COLUMN nick text;
        ALTER TABLE nchat.nchat_users RENAME COLUMN nick TO nickname;
        UPDATE nchat.nchat_users SET nickname = username;
        ALTER TABLE nchat.nchat_users ALTER COLUMN nickname SET NOT NULL;
        ALTER TABLE nchat.nchat_users ADD CONSTRAINT nick_len CHECK (length(nickname) < 50) NOT VALID;
        ALTER TABLE nchat.nchat_users VALIDATE CONSTRAINT nick_len;
        ALTER TABLE nchat.nchat_users RENAME CONSTRAINT nick_len TO nickname_length;
        CREATE INDEX CONCURRENTLY idx_users_nickname ON nchat.nchat_users (nickname);
        ALTER INDEX nchat.idx_users_nickname RENAME TO users_nickname;
        ALTER TABLE nchat.nchat_audit_log ALTER COLUMN action SET DEFAULT 'login';
        ALTER TABLE nchat.nchat_audit_log RENAME TO nchat_audit_events;
        DROP INDEX nchat.idx_messages_user;
    """
    run(nchat_dsn, sql)
    checks = verify(nchat_dsn, sql)
    users, events = "nchat.nchat_users", "nchat.nchat_audit_events"
    assert outcomes(checks) == {
        ("column", f"column {users}.nick"): P,
        ("column", f"column {users}.nickname"): P,
        ("not_null", f"column {users}.nickname"): P,
        ("constraint", f"constraint nick_len on {users}"): P,
        ("constraint", f"constraint nickname_length on {users}"): P,
        ("validated", f"constraint nickname_length on {users}"): P,
        ("index", "index nchat.idx_users_nickname"): P,
        ("index", "index nchat.users_nickname"): P,
        ("default", f"column {events}.action"): P,
        ("table", "table nchat.nchat_audit_log"): P,
        ("table", f"table {events}"): P,
        ("index", "index nchat.idx_messages_user"): P,
        ("index_valid", f"indexes of {users}"): P,
        ("index_valid", f"indexes of {events}"): P,
        ("operation", "update nchat.nchat_users (every row)"): N,
    }
    sentences = [c.sentence for c in checks]
    assert "column nchat.nchat_users.nick does not exist" in sentences
    assert "not checked: update nchat.nchat_users (every row) (update)" in sentences

    run(nchat_dsn, "ALTER TABLE nchat.nchat_users ALTER COLUMN nickname DROP NOT NULL")
    [broken] = [c for c in verify(nchat_dsn, sql) if c.failed]
    assert broken.sentence == (
        "column nchat.nchat_users.nickname allows NULL "
        "(expected: is NOT NULL, after “set NOT NULL on nchat.nchat_users.nickname”)"
    )


def test_a_constraint_added_and_dropped_in_the_same_file_is_only_expected_gone(nchat_dsn: str) -> None:
    run(nchat_dsn, example("055_add_feature_toggle.sql"))
    sql = example("056_feature_toggle_not_null.sql")
    assert outcomes(verify(nchat_dsn, sql))[("not_null", "column nchat.nchat_users.feature_enabled")] is F
    run(nchat_dsn, sql)
    checks = verify(nchat_dsn, sql)
    assert {c.kind for c in checks} == {"not_null", "constraint", "index_valid"}
    assert all(c.outcome is P for c in checks)


def test_a_column_type_is_read_back(nchat_dsn: str) -> None:
    sql = example("060_message_body_varchar.sql")
    key = ("column_type", "column nchat.nchat_messages.body")
    assert outcomes(verify(nchat_dsn, sql))[key] is F
    run(nchat_dsn, sql)
    assert outcomes(verify(nchat_dsn, sql))[key] is P


def test_unnamed_and_other_objects(nchat_dsn: str) -> None:
    sql = """
        CREATE SCHEMA reports;
        CREATE TYPE nchat.mood AS ENUM ('happy', 'sad');
        CREATE SEQUENCE nchat.ticket_seq;
        CREATE VIEW nchat.active_users AS SELECT id FROM nchat.nchat_users;
        CREATE FUNCTION nchat.touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER messages_touch BEFORE UPDATE ON nchat.nchat_messages
            FOR EACH ROW EXECUTE FUNCTION nchat.touch();
        CREATE INDEX ON nchat.nchat_messages (edited_at);
        ALTER TABLE nchat.nchat_channels ADD UNIQUE (name, is_private);
        ALTER TABLE nchat.nchat_messages ADD FOREIGN KEY (user_id) REFERENCES nchat.nchat_users (id);
        ALTER TABLE nchat.nchat_users DROP COLUMN legacy_field;
        DROP TABLE nchat.nchat_channel_members;
    """
    before = verify(nchat_dsn, sql)
    assert {c.kind for c in before if c.outcome is not F} == {"index_valid"}
    assert (
        "column nchat.nchat_users.legacy_field exists (expected: does not exist, after “drop column"
        in str([c.sentence for c in before])
    )
    run(nchat_dsn, sql)
    after = verify(nchat_dsn, sql)
    assert [c.sentence for c in after if c.outcome is not P] == []
    assert {c.kind for c in after} == {
        "schema", "type", "sequence", "view", "function", "trigger", "unnamed_index", "unnamed_constraint",
        "column", "table", "index_valid",
    }  # fmt: skip


def test_an_invalid_index_on_a_touched_table_fails(nchat_dsn: str) -> None:
    sql = (
        "CREATE UNIQUE INDEX CONCURRENTLY users_email_domain ON nchat.nchat_users (split_part(email, '@', 2))"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        run(nchat_dsn, sql)  # the index stays, INVALID
    checks = {c.kind: c for c in verify(nchat_dsn, sql)}
    assert checks["index"].outcome is P
    assert checks["index_valid"].failed
    assert checks["index_valid"].sentence.startswith(
        "INVALID on nchat.nchat_users: nchat.users_email_domain;"
    )
