import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import planning_only_config
from bot.policy import load_policy
from bot.rules import LevelInfo, PlanningOnly
from bot.sql.model import Level


def test_defaults_carry_the_guides_numbers() -> None:
    p = load_policy()
    assert p.complexity.large_table_rows == 1_000_000
    assert p.monitor.window_minutes == 60
    assert p.monitor.rollback_triggers.error_rate_pct == 5
    assert p.monitor.rollback_triggers.error_rate_window_minutes == 10
    assert p.monitor.rollback_triggers.latency_degradation_pct == 50
    assert p.severities["P0"].rollback == "automatic"
    assert (p.severities["P1"].response_minutes, p.severities["P1"].rollback_after_minutes) == (15, 30)
    assert (p.severities["P2"].response_minutes, p.severities["P2"].rollback_after_minutes) == (60, 120)
    assert p.severities["P3"].rollback == "not_required"
    assert [(lv.role, lv.after_minutes) for lv in p.escalation.chain] == [
        ("on_call", 0),
        ("technical_lead", 15),
        ("cto", 60),
    ]
    assert p.approvals.expire_after_days == 7


@pytest.mark.parametrize(
    ("tier", "level", "approvers", "reviews", "rehearsal"),
    [
        ("development", Level.HIGH, [], [], False),
        ("staging", Level.LOW, ["technical_lead"], ["peer_review"], False),
        ("production", Level.LOW, ["technical_lead"], ["peer_review", "qa"], False),
        (
            "production",
            Level.MEDIUM,
            ["technical_lead", "product_owner"],
            ["peer_review", "qa", "load_testing"],
            False,
        ),
        (
            "production",
            Level.HIGH,
            ["technical_lead", "product_owner", "cto"],
            ["architecture_review", "security_review"],
            True,
        ),
    ],
)
def test_approval_matrix(tier: str, level: Level, approvers: list, reviews: list, rehearsal: bool) -> None:
    req = load_policy().approvals.requirement(tier, level)
    assert (req.approvers, req.reviews, req.rehearsal_required) == (approvers, reviews, rehearsal)


def test_complexity_matrix_rows() -> None:
    rules = load_policy().complexity.rules
    assert rules["add_nullable_column"] is Level.LOW
    assert rules["create_index_large_table"] is Level.MEDIUM
    assert rules["add_foreign_key"] is Level.MEDIUM
    assert rules["rename_column"] is Level.HIGH
    assert rules["drop_table"] is Level.HIGH


def test_escalation_delays_must_not_decrease() -> None:
    chain = [{"role": "on_call", "after_minutes": 30}, {"role": "cto", "after_minutes": 10}]
    with pytest.raises(ValidationError):
        load_policy({"escalation": {"chain": chain}})


def test_new_environment_tier_needs_every_level() -> None:
    with pytest.raises(ValidationError, match="missing complexity levels"):
        load_policy({"approvals": {"qa": {"low": {"approvers": [], "reviews": [], "documentation": []}}}})


def test_planning_without_a_config_reads_what_the_validated_defaults_say(tmp_path: Path) -> None:
    """``migrate-bot plan`` without a config builds its rules from the defaults unchecked (no pydantic):
    they must be what validating the same defaults gives, tier by tier."""
    validated = load_policy().planning_rules()
    planning_only = PlanningOnly.defaults(tmp_path)
    assert planning_only.rules == validated
    assert isinstance(planning_only.rules.complexity.levels[Level.HIGH], LevelInfo)
    assert planning_only.rules.runner_settings == {"lock_timeout": "5s", "statement_timeout": "30min"}
    assert set(planning_only.environments) == set(planning_only_config(tmp_path).environments)


def test_planning_rules_follow_a_configs_overrides() -> None:
    policy = load_policy(
        {"complexity": {"rules": {"drop_column": "medium"}}, "execution": {"lock_timeout": "2s"}}
    )
    rules = policy.planning_rules()
    assert rules.complexity.level_of("drop_column") is Level.MEDIUM
    assert rules.runner_settings["lock_timeout"] == "2s"


_CELL = {"approvers": [], "reviews": [], "documentation": []}


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ({"complexity": {"large_table_rows": 0}}, "large_table_rows must be greater than 0"),
        ({"complexity": {"levels": {"low": {"risk": 3}}}}, "Input should be a valid string"),
        ({"approvals": {"qa": dict.fromkeys(("low", "medium", "high"), _CELL | {"docs": []})}}, "Unexpected"),
    ],
)
def test_planning_types_are_validated_as_part_of_the_policy(override: dict, said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        load_policy(override)


def test_plan_without_a_config_loads_neither_pydantic_nor_yaml(tmp_path: Path) -> None:
    """Start-up is most of what planning one file costs; the config file's models are not part of it."""
    (tmp_path / "001_a.sql").write_text("ALTER TABLE app.users ADD COLUMN flag boolean DEFAULT false;\n")
    probe = (
        "import sys, bot.cli; code = bot.cli.main(['plan', sys.argv[1], '--format', 'json']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pydantic', 'yaml', 'sqlalchemy'}), "
        "file=sys.stderr); sys.exit(code)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MIGRATE_BOT_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "001_a.sql")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["file"] == "001_a.sql"
    assert done.stderr.strip() == "[]"
