"""A stored plan's message is drawn from the summary kept when it was planned, never from its analysis
rebuilt, and says what the whole analysis would say."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.approvals import approval_status
from bot.config import planning_only_config
from bot.drafting import PlanDraft, draft_plan
from bot.notifier import ConsoleNotifier
from bot.plans import create_plan
from bot.report import PlanView
from bot.sql.catalog import OfflineCatalog
from bot.summary import SHOWN
from bot.views import plan_view
from handlers.blocks import MAX_LINES, plan_blocks, plan_fallback_text
from storage.db import Database
from storage.models import PlanRecord
from tests.conftest import EXAMPLES

MIGRATIONS = EXAMPLES / "migrations"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    return database


def store(db: Database, draft: PlanDraft) -> int:
    with db.session() as session:
        return create_plan(session, draft, author="U0AUTHOR", channel_id="C0PLANS", now=NOW).id


def stored_view(db: Database, plan_id: int, directory: Path) -> PlanView:
    config = planning_only_config(directory)
    with db.reading() as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        return plan_view(config, plan, approval_status(config, plan))


def drafted_view(draft: PlanDraft, stored: PlanView) -> PlanView:
    """The same plan drawn from its whole analysis, as before plans kept a summary."""
    return PlanView.of_draft(draft, stored.rules, stored.meta)


def test_every_examples_stored_message_is_the_one_its_analysis_draws(db: Database) -> None:
    config = planning_only_config(MIGRATIONS)
    names = sorted(p.name for p in MIGRATIONS.glob("0*.sql") if not p.name.endswith(".rollback.sql"))
    for name in names:
        draft = draft_plan(config, "production", name, catalog=OfflineCatalog(None))
        stored = stored_view(db, store(db, draft), MIGRATIONS)
        drafted = drafted_view(draft, stored)
        assert plan_blocks(stored) == plan_blocks(drafted), name
        assert plan_fallback_text(stored) == plan_fallback_text(drafted), name
        said: list[str] = []
        ConsoleNotifier(write=said.append).post_plan(stored, channel="C0PLANS")
        ConsoleNotifier(write=said.append).post_plan(drafted, channel="C0PLANS")
        assert said[0] == said[1], name


def test_a_long_plan_keeps_what_slack_shows_and_counts_the_rest(tmp_path: Path, db: Database) -> None:
    statements = 3 * SHOWN
    (tmp_path / "070_many.sql").write_text(
        "".join(f"ALTER TABLE app.t{i} DROP COLUMN c;\n" for i in range(statements))
    )
    draft = draft_plan(
        planning_only_config(tmp_path), "production", "070_many.sql", catalog=OfflineCatalog(None)
    )
    plan_id = store(db, draft)
    stored = stored_view(db, plan_id, tmp_path)
    with db.reading() as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None and plan.summary is not None
        assert len(plan.summary["operations"]["lines"]) == SHOWN
        assert plan.summary["operations"]["total"] == statements
    assert plan_blocks(stored) == plan_blocks(drafted_view(draft, stored))
    assert f"…and {statements - MAX_LINES} more" in str(plan_blocks(stored))
    said: list[str] = []
    ConsoleNotifier(write=said.append).post_plan(stored, channel="C0PLANS")
    assert f"…and {statements - SHOWN} more (all of them: `migrate-bot plan`)" in said[0]
    assert "Tables: app.t0, app.t1" in said[0] and f" and {statements - SHOWN} more" in said[0]


@pytest.mark.parametrize("environment", ["production", "development"])  # awaiting approval; approved
def test_a_redraw_never_reads_the_analysis(db: Database, environment: str) -> None:
    config = planning_only_config(MIGRATIONS)
    name = "066_index_without_concurrently.sql"
    plan_id = store(db, draft_plan(config, environment, name, catalog=OfflineCatalog(None)))
    before = plan_blocks(stored_view(db, plan_id, MIGRATIONS))
    with db.session() as session:  # an analysis that cannot be rebuilt: a redraw that did would fail
        session.execute(
            update(PlanRecord).where(PlanRecord.id == plan_id).values(analysis={}, rollback_analysis={})
        )
    assert plan_blocks(stored_view(db, plan_id, MIGRATIONS)) == before
    assert "takes a SHARE lock" in str(before)
    if environment == "development":  # the run's procedure, proposed from the summary
        assert "Procedure: standard" in str(before)
