"""Maintenance windows: read from the config with every problem named, weekly in the environment's time
zone (across midnight and daylight saving), and the refusal or override of a plan that needs one."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Services, build_services
from bot.config import ConfigError, EnvironmentConfig, Settings, parse_config
from bot.errors import Forbidden, InvalidState
from bot.execution.windows import Override, check_window, in_window, needs_window, next_window
from bot.plans import get_plan
from storage.models import OutboxRecord
from tests.clock import Clock
from tests.conftest import EXAMPLES
from tests.execution.test_runner import ROLES, approved

LOW = "054_add_message_bookmarks.sql"  # Low complexity
HIGH = "061_drop_legacy_field.sql"  # High complexity: drops a column
# A Friday morning: outside every window below.
FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def config_data(tmp_path: Path) -> dict[str, Any]:
    """production: the standard procedure (maintenance mode) in weekend windows, UTC; staging: the
    zero-downtime one, in a Berlin window across midnight; development: no windows."""
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    for name in (LOW, LOW.replace(".sql", ".rollback.sql"), HIGH):
        shutil.copy(EXAMPLES / "migrations" / name, migrations / name)
    common = {"migrations_dir": str(migrations), "dsn_env": "TARGET_DSN", "backup_dir": str(tmp_path / "b")}
    return {
        "environments": {
            "production": {
                **common,
                "procedure": "standard",
                "windows": ["Sat 02:00-06:00", "Sun 02:00-06:00"],
                "channel": "C0PROD",
                "stakeholders_channel": "C0STAKE",
            },
            "staging": {
                **common,
                "procedure": "zero_downtime",
                "windows": ["Sat 22:00-02:00"],
                "timezone": "Europe/Berlin",
            },
            "development": {**common, "procedure": "standard"},
        },
        "roles": ROLES,
    }


def make_services(tmp_path: Path, clock: Clock) -> Services:
    config = parse_config(config_data(tmp_path), tmp_path)
    return build_services(Settings(database_url=f"sqlite:///{tmp_path}/state.db"), config, clock=clock)


def env(windows: list[str], timezone: str = "UTC") -> EnvironmentConfig:
    return EnvironmentConfig.model_validate(
        {"name": "production", "migrations_dir": ".", "windows": windows, "timezone": timezone}
    )


def problems(tmp_path: Path, **production: Any) -> list[str]:
    data = config_data(tmp_path)
    data["environments"]["production"].update(production)
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    return info.value.problems


def test_the_config_reads_windows_and_names_every_bad_one(tmp_path: Path) -> None:
    config = parse_config(config_data(tmp_path), tmp_path)
    production, staging = config.environment("production"), config.environment("staging")
    assert [str(w) for w in production.windows] == ["Sat 02:00-06:00", "Sun 02:00-06:00"]
    assert production.timezone == "UTC" and production.stakeholders_channel == "C0STAKE"
    assert staging.timezone == "Europe/Berlin" and config.environment("development").windows == []
    found = problems(
        tmp_path,
        windows=[
            "Sat 02:00-06:00",
            "Saturday 02:00-06:00",
            "Sat 2:00-6:00",
            "Sun 25:00-02:00",
            "Mon 04:00-04:00",
        ],
        timezone="Europe/Berln",
        stakeholders_channel="#stakeholders",
    )
    where = {p.split(":")[0]: p for p in found}
    assert sorted(where) == [
        "environments.production.stakeholders_channel",
        "environments.production.timezone",
        "environments.production.windows[1]",
        "environments.production.windows[2]",
        "environments.production.windows[3]",
        "environments.production.windows[4]",
    ], found
    assert (
        "'Saturday 02:00-06:00' is not a maintenance window: expected a weekday (Mon, Tue"
        in (where["environments.production.windows[1]"])
    )
    assert "like 'Sat 02:00-06:00'" in where["environments.production.windows[2]"]
    assert "'Mon 04:00-04:00' starts when it ends" in where["environments.production.windows[4]"]
    assert (
        "'Europe/Berln' is not a time zone: expected an IANA name like Europe/Berlin"
        in (where["environments.production.timezone"])
    )


def test_a_window_holds_from_its_opening_to_its_closing() -> None:
    weekend = env(["Sat 02:00-06:00", "sun 02:00-06:00"])
    assert in_window(weekend, utc("2026-11-28T02:00"))  # a Saturday
    assert in_window(weekend, utc("2026-11-29T05:59"))
    assert not in_window(weekend, utc("2026-11-28T06:00"))
    assert not in_window(weekend, utc("2026-11-28T01:59"))
    assert not in_window(weekend, FRIDAY)
    assert next_window(weekend, FRIDAY) == utc("2026-11-28T02:00")
    assert next_window(weekend, utc("2026-11-28T03:00")) == utc("2026-11-29T02:00")  # strictly after
    assert next_window(weekend, utc("2026-11-29T03:00")) == utc("2026-12-05T02:00")
    assert next_window(env([]), FRIDAY) is None and not in_window(env([]), FRIDAY)


def test_a_window_across_midnight_ends_the_next_day() -> None:
    night = env(["Sun 23:00-01:30"])
    assert in_window(night, utc("2026-11-29T23:00"))  # Sunday night
    assert in_window(night, utc("2026-11-30T01:29"))  # Monday, before it closes
    assert not in_window(night, utc("2026-11-30T01:30"))
    assert not in_window(night, utc("2026-11-29T00:30"))  # Sunday's early hours belong to Saturday's night
    assert next_window(night, utc("2026-11-30T00:00")) == utc("2026-12-06T23:00")


def test_windows_keep_their_local_hours_in_their_time_zone() -> None:
    berlin = env(["Sat 02:00-06:00"], "Europe/Berlin")
    # Winter (CET, UTC+1): 01:00-05:00 UTC. Summer (CEST, UTC+2): 00:00-04:00 UTC.
    assert in_window(berlin, utc("2026-11-28T01:00")) and not in_window(berlin, utc("2026-11-28T05:00"))
    assert in_window(berlin, utc("2026-06-27T00:00")) and not in_window(berlin, utc("2026-06-27T04:00"))
    assert not in_window(berlin, utc("2026-11-28T00:59"))
    # the Saturday after the clocks go forward (Sunday 2026-03-29) opens an hour earlier in UTC
    assert next_window(berlin, utc("2026-03-27T12:00")) == utc("2026-03-28T01:00")
    assert next_window(berlin, utc("2026-03-28T12:00")) == utc("2026-04-04T00:00")
    # a local window past midnight starts on the day before in UTC
    early = env(["Sat 00:30-01:30"], "Europe/Berlin")
    assert in_window(early, utc("2026-11-27T23:45")) and next_window(early, FRIDAY) == utc("2026-11-27T23:30")
    night = env(["Sat 22:00-02:00"], "Europe/Berlin")
    assert in_window(night, utc("2026-11-29T00:30")) and not in_window(night, utc("2026-11-29T01:00"))


def test_a_plan_that_takes_the_application_down_waits_for_a_window_or_an_approvers_override(
    tmp_path: Path,
) -> None:
    services = make_services(tmp_path, Clock())
    plan_id = approved(services, LOW, "production")
    config = services.config
    with services.db.session() as session:  # as the runner asks: inside its session
        plan = get_plan(session, plan_id)
        assert needs_window(config, plan) == "its standard procedure puts the application in maintenance mode"
        assert check_window(config, plan, utc("2026-11-28T03:00"), user="U0TL") is None
        with pytest.raises(InvalidState) as refused:
            check_window(config, plan, FRIDAY, user="U0TL")
        override = check_window(config, plan, FRIDAY, user="U0ONCALL", override_reason="  incident fix  ")
        granted = check_window(config, plan, FRIDAY, user="U0TL", override_reason="incident fix")
    assert str(refused.value) == (
        "production's maintenance windows are Sat 02:00-06:00, Sun 02:00-06:00 UTC and plan "
        f"#{plan_id} needs one (its standard procedure puts the application in maintenance mode); the "
        f"next opens 2026-11-28 02:00 UTC: `/migrate schedule {plan_id} 2026-11-28T02:00` or run it with "
        "an override reason"
    )
    windows = "Sat 02:00-06:00, Sun 02:00-06:00 UTC"
    assert override == Override(plan_id, "U0ONCALL", "incident fix", ("technical_lead",), windows, FRIDAY)
    with pytest.raises(
        Forbidden, match=r"only Technical Lead may run plan #\d+ outside its maintenance windows"
    ):
        override.check(services.roles, operator=False)
    override.check(services.roles, operator=True)  # the CLI's named operator
    assert granted is not None
    granted.check(services.roles, operator=False)
    with services.db.session() as session:
        granted.record(session, get_plan(session, plan_id), services.outbox)
    with services.db.session() as session:
        event = get_plan(session, plan_id).events[-1]
        news = session.scalars(select(OutboxRecord).where(OutboxRecord.kind == "thread")).all()[-1]
    assert (event.kind, event.actor, event.data["reason"]) == ("window_override", "U0TL", "incident fix")
    assert news.payload["text"] == (
        f"⚠️ <@U0TL> runs plan #{plan_id} outside the maintenance windows ({windows}): incident fix"
    )


def test_what_needs_a_window_and_where_any_time_will_do(tmp_path: Path) -> None:
    services = make_services(tmp_path, Clock())
    low, high = approved(services, LOW, "staging"), approved(services, HIGH, "staging")
    dev = approved(services, LOW, "development")
    config = services.config
    with services.db.session() as session:
        low_plan, high_plan, dev_plan = (get_plan(session, p) for p in (low, high, dev))
        assert needs_window(config, low_plan) is None  # zero downtime, Low
        assert check_window(config, low_plan, FRIDAY, user="U0TL") is None
        assert needs_window(config, high_plan) == "it is High complexity"
        with pytest.raises(
            InvalidState, match=r"the next opens 2026-11-28 21:00 UTC \(22:00 Europe/Berlin\)"
        ):
            check_window(config, high_plan, FRIDAY, user="U0TL")
        assert check_window(config, high_plan, utc("2026-11-29T00:59"), user="U0TL") is None
        assert needs_window(config, dev_plan) is not None  # maintenance mode, but no windows: any time
        assert check_window(config, dev_plan, FRIDAY, user="U0TL") is None
