"""Change freezes: who may freeze and lift one, what the environment's channel is told, the history kept,
and the refusal the runner gives a plan on a frozen environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Services
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.freeze import ChannelMessage, Freezes
from bot.plans import get_plan
from storage.models import FreezeRecord
from tests.clock import Clock
from tests.execution.test_runner import approved
from tests.execution.test_windows import LOW, make_services

FROZEN_AT = datetime(2026, 11, 26, 10, 2, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.now = FROZEN_AT
    return clock


@pytest.fixture
def services(tmp_path: Path, clock: Clock) -> Services:
    return make_services(tmp_path, clock)


@pytest.fixture
def freezes(services: Services) -> Freezes:
    return Freezes(services.runner.deps)


def test_a_freeze_stops_every_run_on_its_environment_until_it_is_lifted(
    services: Services, freezes: Freezes, clock: Clock
) -> None:
    plan_id = approved(services, LOW, "production")
    change = freezes.freeze("production", user="U0ONCALL", reason="Black Friday <!channel>")
    assert change.announcement == ChannelMessage(
        "C0PROD",
        "🧊 *production is frozen* by <@U0ONCALL>: Black Friday &lt;!channel&gt;\nNothing runs there until "
        "`/migrate unfreeze production`; rollbacks and restores still can.",
    )
    with services.db.session() as session, pytest.raises(InvalidState) as refused:  # as the runner asks
        Freezes.check_not_frozen(session, get_plan(session, plan_id).environment)
    assert str(refused.value) == (
        "production is frozen since 2026-11-26 10:02 UTC by <@U0ONCALL>: Black Friday <!channel>; "
        "nothing runs there until `/migrate unfreeze production`"
    )
    with services.db.session() as session:
        Freezes.check_not_frozen(session, "staging")  # other environments run on
    clock.now += timedelta(hours=5)
    lifted = freezes.unfreeze("production", user="U0CTO")
    assert lifted.announcement.text == (
        "🌤️ *production is unfrozen* by <@U0CTO>; it was frozen since 2026-11-26 10:02 UTC by <@U0ONCALL>: "
        "Black Friday &lt;!channel&gt;\nApproved plans run there again."
    )
    with services.db.session() as session:
        Freezes.check_not_frozen(session, "production")
        assert Freezes.current(session, "production") is None


def test_only_freezers_freeze_once_and_the_history_stays(
    services: Services, freezes: Freezes, clock: Clock
) -> None:
    with pytest.raises(
        Forbidden, match="only Technical Lead or CTO or On Call may freeze or unfreeze production"
    ):
        freezes.freeze("production", user="U0QA1", reason="release")
    with pytest.raises(UserError, match="say why production is frozen"):
        freezes.freeze("production", user="U0TL", reason="  ")
    with pytest.raises(UserError, match="unknown environment 'prod'"):
        freezes.freeze("prod", user="U0TL", reason="release")
    with pytest.raises(InvalidState, match="production is not frozen"):
        freezes.unfreeze("production", user="U0TL")
    freezes.freeze("production", user="U0TL", reason="release train")
    with pytest.raises(
        InvalidState, match="already frozen, since 2026-11-26 10:02 UTC by <@U0TL>: release train"
    ):
        freezes.freeze("production", user="U0CTO", reason="again")
    with pytest.raises(Forbidden):
        freezes.unfreeze("production", user="U0QA1")
    clock.now += timedelta(days=1)
    freezes.unfreeze("production", user="Dana (SRE)", operator=True)  # the CLI: a named operator
    freezes.freeze("production", user="U0CTO", reason="audit")
    with services.db.session() as session:
        history = [
            (f.by, f.reason, f.lifted_by, f.lifted_at is not None)
            for f in session.scalars(select(FreezeRecord).order_by(FreezeRecord.id))
        ]
    assert history == [("U0TL", "release train", "Dana (SRE)", True), ("U0CTO", "audit", None, False)]
