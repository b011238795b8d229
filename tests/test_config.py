from pathlib import Path

import pytest

from bot.cli import main
from bot.config import (
    ConfigError,
    DeliveryConfig,
    ServeConfig,
    Settings,
    load_config,
    parse_config,
    planning_only_config,
)


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


STAFF = {
    "technical_lead": {"users": ["U0TL"]},
    "product_owner": {"users": ["U0PO"]},
    "cto": {"users": ["U0CTO"]},
    "qa": {"users": ["U0QA1", "U0QA2"]},
    "architect": {"users": ["U0ARCH"]},
    "security": {"groups": ["S0SEC"]},
    "on_call": {"users": ["W0ONCALL"]},
}


def _problems(tmp_path: Path, **overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(tmp_path, **overrides), tmp_path)
    return info.value.problems


def test_every_problem_of_the_file_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        environments={
            "production": {
                "dsn": "postgresql://u:pw@h/db",
                "migrations_dir": "nope",
                "channel": "#migrations",
            },
            "staging": {"migrations_dir": "migrations", "server_version_num": 1},
        },
        roles={**STAFF, "qa": {"users": ["@alice", "U0QA2"]}, "cto": {"users": []}},
        policy={"monitr": {}, "monitor": {"window_minutes": -1}},
        serve={"http_threads": 0},
        surprise=1,
    )
    keys = [p.split(": ")[0] for p in problems]
    assert keys == [
        "surprise",
        "environments.production.dsn",
        "environments.production.migrations_dir",
        "environments.production.channel",
        "environments.staging.server_version_num",
        "roles.cto",
        "roles.qa.users[0]",
        "policy.monitr",
        "policy.monitor.window_minutes",
        "serve.http_threads",
    ], problems


def test_a_valid_environment_is_checked_beside_an_invalid_one(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        environments={"production": {"migrations_dir": "nope"}, "staging": {"migrations_dir": 1.5, "x": 1}},
    )
    assert [p.split(": ")[0] for p in problems] == [
        "environments.production.migrations_dir",
        "environments.staging.migrations_dir",
        "environments.staging.x",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"roles": {**STAFF, "qa": {"users": ["@alice"]}}},
            "roles.qa.users[0]: '@alice' is not a Slack user id: expected U or W followed by capital letters "
            "and digits, like U012AB3CD",
        ),
        ({"roles": {**STAFF, "cto": {"users": ["u078ij9kl"]}}}, "roles.cto.users[0]: 'u078ij9kl' is not"),
        (
            {"roles": {**STAFF, "qa": {"groups": ["@qa-team"]}}},
            "roles.qa.groups[0]: '@qa-team' is not a Slack user-group id: expected S followed by",
        ),
        (
            {"environments": {"production": {"migrations_dir": "migrations", "channel": "#migrations"}}},
            "environments.production.channel: '#migrations' is not a Slack channel id: expected C or G",
        ),
    ],
)
def test_slack_ids_must_look_like_ids(tmp_path: Path, overrides: dict, expected: str) -> None:
    problems = _problems(tmp_path, **overrides)
    assert any(p.startswith(expected) for p in problems), problems


def test_slack_ids_of_every_kind_are_accepted(tmp_path: Path) -> None:
    data = _config(tmp_path, roles=STAFF)
    data["environments"]["production"]["channel"] = "G0PRIVATE1"
    cfg = parse_config(data, tmp_path)
    assert cfg.roles["on_call"].users == ["W0ONCALL"]
    assert cfg.environment(None).channel == "G0PRIVATE1"


def test_a_matrix_cell_the_roles_can_never_fill_is_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, roles={**STAFF, "qa": {"users": ["U0QA1"]}})
    assert problems == [
        "policy.approvals.production.medium: can never be approved: QA and Load Testing both need a "
        "different qa holder, and qa has 1 member (U0QA1)"
    ]


def test_cells_of_tiers_no_environment_uses_and_unread_groups_are_not_problems(tmp_path: Path) -> None:
    staging = {"staging": {"migrations_dir": "migrations"}}
    parse_config(
        _config(tmp_path, environments=staging, roles={**STAFF, "qa": {"users": ["U0QA1"]}}), tmp_path
    )
    parse_config(_config(tmp_path, roles={**STAFF, "qa": {"groups": ["S0QA"]}}), tmp_path)


def test_a_role_reported_missing_is_not_reported_again_through_its_cells(tmp_path: Path) -> None:
    problems = _problems(tmp_path, roles={k: v for k, v in STAFF.items() if k != "cto"})
    assert problems == ["roles.cto: required by the policy but not defined"]


def test_serve_and_delivery_have_defaults_and_can_be_tuned(tmp_path: Path) -> None:
    cfg = parse_config(_config(tmp_path), tmp_path)
    assert cfg.serve == ServeConfig() and cfg.delivery == DeliveryConfig()
    assert (cfg.serve.http_threads, cfg.serve.workers, cfg.serve.decision_workers) == (16, 2, 2)
    assert cfg.serve.isolation == "processes"
    assert cfg.serve.modal_deadline_seconds == 1.5
    assert (cfg.delivery.retry_max_seconds, cfg.delivery.give_up_after_hours) == (300, 24)
    tuned = parse_config(
        _config(
            tmp_path, serve={"workers": 8, "modal_deadline_seconds": 2}, delivery={"retry_max_seconds": 60}
        ),
        tmp_path,
    )
    assert tuned.serve.workers == 8 and tuned.serve.modal_deadline_seconds == 2
    assert tuned.serve.http_threads == 16 and tuned.delivery.retry_max_seconds == 60
    assert planning_only_config(tmp_path).serve == ServeConfig()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"serve": {"http_threads": 0}}, "serve.http_threads"),
        ({"serve": {"decision_workers": 1.5}}, "serve.decision_workers"),
        ({"serve": {"modal_deadline_seconds": 3}}, "serve.modal_deadline_seconds"),
        ({"serve": {"modal_deadline_seconds": 0}}, "serve.modal_deadline_seconds"),
        ({"serve": {"threads": 4}}, "serve.threads"),
        ({"delivery": {"retry_max_seconds": 0}}, "delivery.retry_max_seconds"),
        ({"delivery": {"give_up_after_hours": -1}}, "delivery.give_up_after_hours"),
        ({"delivery": [1]}, "delivery"),
    ],
)
def test_serve_and_delivery_refuse_what_cannot_work(tmp_path: Path, overrides: dict, key: str) -> None:
    assert [p.split(": ")[0] for p in _problems(tmp_path, **overrides)] == [key]


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"environments:\n  production: {migrations_dir: caf\xe9}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}:2: not UTF-8 text (byte 0xe9 at offset 48)"]


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "a list"), ("just words\n", "a str"), ("", "an empty")]
)
def test_a_file_that_is_not_a_mapping_says_what_it_is(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith(
        f"(top level): expected a mapping with an 'environments' key, not {kind}"
    )
