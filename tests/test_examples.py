"""The examples: valid SQL that applies in order on a real PostgreSQL, planned as their headers say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.config import load_config
from bot.demo import SHOWN, load_example_schema
from bot.drafting import draft_plan
from bot.sql.parse import parse_statements
from bot.sql.rollback import ROLLBACK_SUFFIX
from bot.targets import open_catalog
from tests.conftest import EXAMPLES

MIGRATIONS = EXAMPLES / "migrations"
HAZARD_CODES = {
    "index_without_concurrently", "concurrently_in_transaction", "add_column_not_null_without_default",
    "add_column_volatile_default", "add_column_default_rewrite",
    "set_not_null", "constraint_validation", "foreign_key_unindexed", "unique_without_index", "rename_column",
    "rename_table", "change_column_type", "drop_column", "drop_table", "drop_index_without_concurrently",
    "update_without_where", "delete_without_where", "data_migration", "truncate", "table_rewrite_maintenance",
    "lock_table", "merge_alters", "missing_lock_timeout", "unrelated_tables", "not_analysed",
    "cannot_run_in_transaction", "enum_value_used_in_transaction", "validate_in_same_transaction",
    "transaction_left_open", "nested_transaction", "table_rewrite", "dependent_objects",
}  # fmt: skip
# file -> (complexity against the seeded demo database, hazard codes); mirrors examples/README.md
EXPECTED = {
    "054_add_message_bookmarks.sql": ("low", set()),
    "055_add_feature_toggle.sql": ("low", set()),
    "056_feature_toggle_not_null.sql": ("medium", {"merge_alters"}),
    "057_split_full_name.sql": ("medium", {"data_migration"}),
    "058_messages_user_fk.sql": ("low", set()),
    "059_rename_full_name.sql": ("high", {"rename_column", "missing_lock_timeout"}),
    "060_message_body_varchar.sql": ("high", {"change_column_type", "missing_lock_timeout"}),
    "061_drop_legacy_field.sql": ("high", {"drop_column"}),
    "062_backfill_edited_at.sql": ("high", {"update_without_where"}),
    "063_clear_bookmarks.sql": ("high", {"truncate", "missing_lock_timeout"}),
    "064_vacuum_full_messages.sql": ("medium", {"table_rewrite_maintenance", "missing_lock_timeout"}),
    "065_lock_channels.sql": ("medium", {"lock_table", "data_migration", "missing_lock_timeout"}),
    "066_index_without_concurrently.sql": ("low", {"index_without_concurrently", "missing_lock_timeout"}),
    "067_index_concurrently_in_transaction.sql": ("low", {"concurrently_in_transaction"}),
    "068_unique_email.sql": ("medium", {"unique_without_index"}),
    "069_channel_topics.sql": ("low", {"foreign_key_unindexed"}),
    "070_pin_messages.sql": ("low", {"merge_alters"}),
    "071_unrelated_changes.sql": ("high", {"unrelated_tables"}),
    "072_tenant_not_null.sql": ("high", {"add_column_not_null_without_default", "missing_lock_timeout"}),
    "073_message_public_id.sql": ("high", {"add_column_volatile_default"}),
    "074_message_length_check.sql": ("medium", {"constraint_validation"}),
    "075_drop_created_at_index.sql": ("medium", {"drop_index_without_concurrently"}),
    "076_purge_audit_log.sql": ("high", {"delete_without_where"}),
    "077_drop_channel_topics.sql": ("high", {"drop_table", "missing_lock_timeout"}),
    "078_first_name_not_null.sql": ("medium", {"set_not_null"}),
    "079_rename_audit_log.sql": ("high", {"rename_table", "missing_lock_timeout"}),
    "080_do_block_backfill.sql": ("medium", {"not_analysed", "data_migration"}),
    "081_vacuum_in_transaction.sql": ("low", {"cannot_run_in_transaction"}),
    "082_channel_kind_enum.sql": ("medium", {"enum_value_used_in_transaction", "data_migration"}),
    "083_validate_in_one_transaction.sql": ("low", {"validate_in_same_transaction"}),
    "084_nested_begin.sql": ("low", {"nested_transaction"}),
    "085_members_tablespace.sql": ("medium", {"table_rewrite"}),
    "086_drop_users_table.sql": ("high", {"dependent_objects", "drop_table"}),
    "087_transaction_left_open.sql": ("low", {"transaction_left_open"}),
}
# Examples that fail on purpose, and the error PostgreSQL gives.
FAILING = {
    "067_index_concurrently_in_transaction.sql": "cannot run inside a transaction block",
    "072_tenant_not_null.sql": "contains null values",
    "081_vacuum_in_transaction.sql": "cannot run inside a transaction block",
    "082_channel_kind_enum.sql": "unsafe use of new value",
    "086_drop_users_table.sql": "other objects depend on it",
}


def example_migrations(migrations_dir: Path) -> list[Path]:
    return sorted(p for p in migrations_dir.glob("*.sql") if not p.name.endswith(ROLLBACK_SUFFIX))


def apply(conn: psycopg.Connection, sql: str) -> None:
    """Statement by statement in autocommit, as psql runs a file (so VACUUM FULL and CONCURRENTLY work)."""
    for item in parse_statements(sql):
        conn.execute(item.statement.sql)


def test_every_example_is_listed_and_parses() -> None:
    assert [p.name for p in example_migrations(MIGRATIONS)] == sorted(EXPECTED)
    for path in MIGRATIONS.glob("*.sql"):
        assert parse_statements(path.read_text()), path.name


def test_every_hazard_code_is_shown_by_an_example() -> None:
    shown = set().union(*(codes for _, codes in EXPECTED.values()))
    version_rules = {"add_column_default_rewrite"}  # needs another server
    assert shown | version_rules == HAZARD_CODES


def test_the_examples_apply_in_order_on_postgresql(target_dsn: str) -> None:
    load_example_schema(target_dsn, EXAMPLES)
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        for path in example_migrations(MIGRATIONS):
            if path.name in FAILING:
                with pytest.raises(psycopg.Error, match=FAILING[path.name]):
                    apply(conn, path.read_text())
                conn.execute("ROLLBACK")  # a failed explicit transaction stays open otherwise
                continue
            apply(conn, path.read_text())
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'nchat_users'"
        )}  # fmt: skip
    assert {"display_name", "first_name", "feature_enabled"} <= columns and "legacy_field" not in columns


@pytest.fixture(scope="module")
def seeded_dsn(pg_admin_dsn: str) -> str:
    from bot.embedded import create_database, drop_database

    dsn = create_database(pg_admin_dsn, "examples_seeded")
    load_example_schema(dsn, EXAMPLES)
    yield dsn  # type: ignore[misc]
    drop_database(pg_admin_dsn, "examples_seeded")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_example_is_planned_as_its_header_says(
    name: str, seeded_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROD_DATABASE_URL", seeded_dsn)
    config = load_config(EXAMPLES / "config.yaml")
    env = config.environment("production")
    with open_catalog(env) as catalog:
        draft = draft_plan(config, "production", name, catalog=catalog)
    complexity, hazards = EXPECTED[name]
    assert draft.analysis.target.source == "live"
    assert {h.code for h in draft.analysis.hazards} == hazards
    assert draft.analysis.complexity.value == complexity
    assert f"Expected: {complexity.capitalize()}" in (MIGRATIONS / name).read_text()


@pytest.mark.parametrize("config", ["config.yaml", "demo-config.yaml"])
def test_the_example_configs_are_valid(config: str) -> None:
    loaded = load_config(EXAMPLES / config)
    assert loaded.environments["production"].migrations_dir == MIGRATIONS.resolve()


def demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``migrate-bot demo`` as a new user runs it: in a directory of their own, with no settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRATE_BOT_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES.parent), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_the_demo_runs_on_embedded_defaults_twice_alike_and_fits_two_screens(tmp_path: Path) -> None:
    result = demo(tmp_path, "--timeline-out", str(tmp_path / "timeline"))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) < 200, "about two screens"
    assert f"{len(SHOWN)} plans stored" in result.stdout
    assert "*" not in result.stdout.replace("* ", ""), "no Slack markup on a terminal"
    assert "✅ Apply the migration" in result.stdout and "Plan #1 is rolled back" in result.stdout
    assert re.search(r"Rehearsal #1 passed; plan #\d+ is approved", result.stdout)  # the High plan's gate
    assert "column nchat.nchat_users.legacy_field is missing" in result.stdout  # 061's rollback cannot
    # the run's window: a P2 breach pages on-call, who acknowledges; the lead rolls back; its export
    assert "P2 incident #1 on plan #1" in result.stdout and "acknowledged incident #1" in result.stdout
    report = (tmp_path / "timeline" / "example-timeline.md").read_text()
    assert "| Outcome | rolled back |" in report and "](example-timeline.png)" in report
    assert (tmp_path / "timeline" / "example-timeline.png").read_bytes().startswith(b"\x89PNG")
    # the look-around commands it prints work as printed, on its store
    exported = re.search(r"export (DATABASE_URL=\S+) (MIGRATE_BOT_CONFIG=\S+)", result.stdout)
    assert exported is not None and "migrate-bot status 1" in result.stdout
    env = {**os.environ, **dict(pair.split("=", 1) for pair in exported.groups())}
    status = subprocess.run(
        [sys.executable, "-m", "bot.cli", "status", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert status.returncode == 0 and "rolled back" in status.stdout, status.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".migrate-bot", "timeline"]  # nothing else left
    again = demo(tmp_path, "--timeline-out", str(tmp_path / "timeline"))
    assert again.returncode == 0, again.stderr
    assert _stable(again.stdout) == _stable(result.stdout), (
        "a second run starts clean and tells the same story"
    )


def _stable(text: str) -> str:
    """The demo's output without its clock readings (durations, times, backup names) and the sessions its
    server had at a sample (another client's connection may linger a moment longer on a busy machine)."""
    return re.sub(r"\d+\.\d+ ?s\b|\d{8}T\d{6}Z|\d{4}-\d{2}-\d{2} \d{2}:\d{2}|(?<=connections )\d+", "…", text)
