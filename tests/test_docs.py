"""The documentation a clone ships: docs/procedure.md says what the policy enforces, and no link leaves
the repository."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

from bot.config import load_config
from bot.docs import PROCEDURE_MD, main, render
from bot.policy import default_policy_data, load_policy

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_procedure_tables_are_the_policy_defaults() -> None:
    committed = PROCEDURE_MD.read_text(encoding="utf-8")
    assert render(committed, load_policy()) == committed, "docs/procedure.md is stale: python -m bot.docs"


def test_a_changed_default_is_a_stale_procedure(tmp_path: Path) -> None:
    committed = PROCEDURE_MD.read_text(encoding="utf-8")
    stricter = render(committed, load_policy({"monitor": {"rollback_triggers": {"error_rate_pct": 2}}}))
    assert "| `monitor.rollback_triggers.error_rate_pct` | 2 |" in stricter
    stale = tmp_path / "procedure.md"
    stale.write_text(stricter, encoding="utf-8")
    assert main(["--check", "--file", str(stale)]) == 1
    assert main(["--file", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == committed


def _leaves(data: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for name, value in data.items():
        if isinstance(value, dict):
            found += _leaves(value, f"{prefix}{name}.")
        else:
            found.append(f"{prefix}{name}")
    return found


def test_every_policy_key_is_named_in_the_procedure() -> None:
    """A row names the key a team overrides; a new key of bot/policy_defaults.py needs one."""
    named = {
        re.sub(r"\[\d+\]$", "", key) for key in re.findall(r"`([a-z_]+\.[^`]+)`", PROCEDURE_MD.read_text())
    }
    unnamed = [
        leaf
        for leaf in _leaves(default_policy_data())
        if not any(leaf == key or leaf.startswith(key + ".") for key in named)
    ]
    assert unnamed == []


def test_the_procedure_override_example_is_a_valid_policy() -> None:
    example = re.search(r"```yaml\n(.*?)```", PROCEDURE_MD.read_text(), re.DOTALL)
    assert example is not None
    policy = load_policy(yaml.safe_load(example.group(1))["policy"])
    assert policy.approvals.expire_after_days == 3 and policy.monitor.rollback_triggers.error_rate_pct == 2


def test_readme_and_docs_link_only_inside_the_repository() -> None:
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(REPO) and path.exists(), (
                f"{page.name}: {target} is not in the repository"
            )


def test_the_deploy_recipes_config_map_is_a_valid_config(tmp_path: Path) -> None:
    deploy = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = re.search(r"  config\.yaml: \|\n((?:    .*\n)+)", deploy)
    assert block is not None
    (tmp_path / "migrations").mkdir()
    text = textwrap.dedent(block.group(1)).replace(" /migrations", f" {tmp_path}/migrations")
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "config.yaml")
    assert config.environment("production").backup_dir == Path("/backups")
