from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, Settings, load_config, parse_config


def _config(tmp_path: Path, **overrides: object) -> dict:
    (tmp_path / "migrations").mkdir(exist_ok=True)
    data: dict = {"environments": {"production": {"dsn_env": "PROD_DB", "migrations_dir": "migrations"}}}
    data.update(overrides)
    return data


def test_minimal_config_resolves_paths_and_defaults(tmp_path: Path) -> None:
    cfg = parse_config(_config(tmp_path), tmp_path)
    env = cfg.environment(None)
    assert env.name == "production" and env.tier == "production"
    assert env.migrations_dir == (tmp_path / "migrations").resolve()
    assert env.dsn({"PROD_DB": "postgresql://u@h/db"}) == "postgresql://u@h/db"
    assert env.dsn({}) is None


@pytest.mark.parametrize(
    ("data_patch", "expected"),
    [
        (
            {"environments": {"production": {"dsn": "postgresql://u:pw@h/db", "migrations_dir": "m"}}},
            "environments.production.dsn: connection strings and passwords never go in the file",
        ),
        (
            {"environments": {"production": {"migrations_dir": "nope"}}},
            "environments.production.migrations_dir:",
        ),
        (
            {"environments": {"production": {"migrations_dir": "migrations", "dsn_env": "NOT VALID"}}},
            "environments.production.dsn_env: 'NOT VALID' is not an environment variable name",
        ),
        (
            {"environments": {"qa": {"migrations_dir": "migrations"}}},
            "environments.qa.tier: 'qa' has no approval rules",
        ),
        ({"policy": {"monitor": {"window_minutes": -1}}}, "policy.monitor.window_minutes"),
        ({"policy": {"monitr": {}}}, "policy.monitr: unknown setting"),
        ({"policy": {"complexity": {"rules": {"drop_colum": "low"}}}}, "policy.complexity.rules.drop_colum"),
        ({"roles": {"technical_lead": {"users": []}}}, "roles.technical_lead: lists no users and no groups"),
        ({"runbook": {"maintenance_on": []}}, "runbook.maintenance_on: must be a non-empty list"),
        ({"default_environment": "staging"}, "default_environment: 'staging' is not one of the environments"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_invalid_config_names_key_and_problem(tmp_path: Path, data_patch: dict, expected: str) -> None:
    data = _config(tmp_path)
    data.update(data_patch)
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_roles_required_by_policy_are_listed_when_roles_are_configured(tmp_path: Path) -> None:
    data = _config(tmp_path, roles={"technical_lead": {"users": ["U1"]}})
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    missing = {p.split(":")[0] for p in info.value.problems}
    assert {"roles.product_owner", "roles.cto", "roles.on_call"} <= missing


def test_policy_override_changes_only_that_number(tmp_path: Path) -> None:
    data = _config(
        tmp_path, policy={"approvals": {"expire_after_days": 3}, "monitor": {"window_minutes": 30}}
    )
    cfg = parse_config(data, tmp_path)
    assert cfg.policy.approvals.expire_after_days == 3
    assert cfg.policy.monitor.window_minutes == 30
    assert cfg.policy.monitor.rollback_triggers.error_rate_pct == 5


def test_yaml_syntax_error_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("environments:\n  production: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:3:" in info.value.problems[0] or f"{path}:2:" in info.value.problems[0]


def test_check_config_cli_prints_problems_and_exits_non_zero(tmp_path: Path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("environments:\n  production: {migrations_dir: missing-dir}\npolicy: {monitr: {}}\n")
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "policy.monitr: unknown setting" in err


def test_settings_from_env_and_slack_problems() -> None:
    s = Settings.from_env({"SLACK_BOT_TOKEN": "xoxp-user", "PORT": "3001"})
    assert s.port == 3001
    assert s.database_url.startswith("sqlite:///")
    problems = s.slack_problems()
    assert any("xoxb-" in p for p in problems)
    assert any("SLACK_SIGNING_SECRET" in p for p in problems)
    with pytest.raises(ConfigError):
        Settings.from_env({"PORT": "http"})
    ok = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert ok.slack_problems() == []
    assert "xoxb-1" not in repr(ok)
