"""Integrity over the real schema: orphans of every foreign key, NOT VALID constraints, invalid indexes."""

from __future__ import annotations

import psycopg
import pytest

from bot.execution.checks import Outcome
from bot.execution.errors import StepCancelled
from bot.execution.integrity import check_integrity, row_counts, validated_constraints
from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import OfflineCatalog
from tests.conftest import EXAMPLES
from tests.execution.conftest import table_locked

FOREIGN_KEYS = {
    "nchat.nchat_channel_members.nchat_channel_members_channel_id_fkey",
    "nchat.nchat_channel_members.nchat_channel_members_user_id_fkey",
    "nchat.nchat_channels.nchat_channels_created_by_fkey",
    "nchat.nchat_messages.nchat_messages_channel_id_fkey",
}


def run(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def test_every_foreign_key_of_a_sound_schema_is_counted_and_passes(nchat_dsn: str) -> None:
    heard: list[str] = []
    checks = check_integrity(nchat_dsn, progress=heard.append)
    assert {c.subject for c in checks} == FOREIGN_KEYS
    assert all(c.kind == "orphans" and c.outcome is Outcome.PASSED and c.count == 0 for c in checks)
    assert heard[-1] == "orphaned rows counted for 4/4 foreign keys"


def test_orphans_fail_rows_with_a_null_key_do_not_count(nchat_dsn: str) -> None:
    run(
        nchat_dsn,
        "CREATE TABLE nchat.nchat_reactions (id int PRIMARY KEY, user_id uuid, emoji text);"
        "INSERT INTO nchat.nchat_reactions VALUES (1, md5('user1')::uuid, '👍'), (2, NULL, '👀'),"
        " (3, gen_random_uuid(), '🎉'), (4, gen_random_uuid(), '🎉');"
        "ALTER TABLE nchat.nchat_reactions ADD CONSTRAINT reactions_user_fk"
        " FOREIGN KEY (user_id) REFERENCES nchat.nchat_users (id) NOT VALID",
    )
    checks = {(c.kind, c.subject): c for c in check_integrity(nchat_dsn)}
    orphans = checks["orphans", "nchat.nchat_reactions.reactions_user_fk"]
    assert orphans.outcome is Outcome.FAILED and orphans.count == 2
    assert "2 row(s) of nchat.nchat_reactions reference no row of nchat.nchat_users" in orphans.sentence
    not_valid = [c for c in checks.values() if c.kind == "not_valid"]
    assert [(c.subject, c.outcome) for c in not_valid] == [
        ("nchat.nchat_reactions.reactions_user_fk", Outcome.NOTED)
    ]


def test_a_constraint_the_migration_validated_fails_while_still_not_valid(nchat_dsn: str) -> None:
    run(
        nchat_dsn,
        "ALTER TABLE nchat.nchat_users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%') NOT VALID",
    )
    checks = check_integrity(nchat_dsn, validated={"email_has_at"})
    [not_valid] = [c for c in checks if c.kind == "not_valid"]
    assert not_valid.outcome is Outcome.FAILED and "still NOT VALID" in not_valid.sentence


def test_an_invalid_index_fails(nchat_dsn: str) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):  # leaves the index behind, INVALID
        run(
            nchat_dsn,
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_domain"
            " ON nchat.nchat_users (split_part(email, '@', 2))",
        )
    [invalid] = [c for c in check_integrity(nchat_dsn) if c.kind == "index_valid"]
    assert invalid.subject == "nchat.users_email_domain" and invalid.failed


def test_a_count_past_its_statement_timeout_is_not_checked(nchat_dsn: str) -> None:
    with table_locked(nchat_dsn, "nchat.nchat_channels"):
        checks = {c.subject: c for c in check_integrity(nchat_dsn, statement_timeout="200ms")}
    waited = checks["nchat.nchat_messages.nchat_messages_channel_id_fkey"]
    assert waited.outcome is Outcome.NOT_CHECKED and "not counted within 200ms" in waited.sentence
    assert checks["nchat.nchat_channel_members.nchat_channel_members_user_id_fkey"].outcome is Outcome.PASSED


def test_cancelling_stops_between_foreign_keys(nchat_dsn: str) -> None:
    with pytest.raises(StepCancelled, match="after 0 foreign keys"):
        check_integrity(nchat_dsn, cancelled=lambda: True)


def test_row_counts_are_exact_and_none_for_a_missing_table(nchat_dsn: str) -> None:
    run(nchat_dsn, "DELETE FROM nchat.nchat_audit_log WHERE id % 3 = 0")  # no ANALYZE: estimates are stale
    assert row_counts(nchat_dsn, ["nchat.nchat_audit_log", "nchat.nchat_users", "nchat.nope"]) == {
        "nchat.nchat_audit_log": 3334,
        "nchat.nchat_users": 2000,
        "nchat.nope": None,
    }


def test_the_constraints_a_migration_validates_are_read_from_its_operations() -> None:
    policy = load_policy().complexity
    catalog = OfflineCatalog(180000)
    for name, expected in [
        ("058_messages_user_fk.sql", {"fk_messages_user_id"}),
        ("056_feature_toggle_not_null.sql", {"nchat_users_feature_enabled_not_null"}),
        ("055_add_feature_toggle.sql", set()),
    ]:
        sql = (EXAMPLES / "migrations" / name).read_text()
        assert validated_constraints(analyze(sql, catalog=catalog, policy=policy).operations) == expected, (
            name
        )
