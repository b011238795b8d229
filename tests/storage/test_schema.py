"""The bot's own schema: Alembic owns it, and the models match it exactly."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.embedded import create_database
from storage.db import Database
from storage.models import Base


def _assert_models_match(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_upgrade_is_idempotent_and_matches_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/sub/state.db")
    db.upgrade()
    db.upgrade()
    assert {"plans", "events", "alembic_version"} <= set(inspect(db.engine).get_table_names())
    _assert_models_match(db)


def test_postgresql_store_upgrade_matches_models(pg_admin_dsn: str) -> None:
    dsn = create_database(pg_admin_dsn, "botstate_schema_test")
    db = Database(dsn)
    db.upgrade()
    _assert_models_match(db)
