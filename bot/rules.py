"""What planning a migration needs of the configuration, as plain frozen values.

``migrate-bot plan`` runs in CI pipelines, often once per file, where starting up is most of its time:
nothing here loads pydantic or a YAML parser. ``bot.policy`` validates these same types as part of the
whole policy (pydantic reads standard dataclasses) and ``BotConfig.rules`` hands them over; without a
config file, ``PlanningOnly.defaults`` builds them from the shipped defaults, which the tests check
against the validated ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.sql.model import Level

E = TypeVar("E")

# The review role anyone but the plan's author holds (the guide's "peer review").
PEER_ROLE = "peer"
# Approval settings that sit beside the environments in ``approvals:`` (the rest are environment tiers).
APPROVAL_SCALARS = frozenset({"expire_after_days", "review_roles", "distinct_approvers"})
# Where planning goes when no environment is named and no config names one.
DEFAULT_TIER = "development"
# pydantic's options for the dataclasses below (a plain dict: ConfigDict is a TypedDict).
_STRICT_KEYS = {"extra": "forbid"}


def pick_environment(environments: Mapping[str, E], name: str | None, default: str) -> E:
    """The named environment (``default`` when None); KeyError names the known ones."""
    key = name or default
    if key not in environments:
        raise KeyError(f"unknown environment {key!r}; known environments: {', '.join(sorted(environments))}")
    return environments[key]


def display_name(name: str) -> str:
    """A policy key as people say it: ``technical_lead`` -> ``Technical Lead``; ``qa`` -> ``QA``."""
    return " ".join(w.upper() if w in {"qa", "cto"} else w.capitalize() for w in name.split("_"))


@dataclass(frozen=True)
class LevelInfo:
    """What the guide expects at a complexity level: its risk, downtime and testing."""

    __pydantic_config__ = _STRICT_KEYS

    risk: str
    downtime: str
    testing: list[str]


@dataclass(frozen=True)
class ComplexityPolicy:
    """The guide's complexity matrix: each rule of the analysis and its level; what counts as large."""

    __pydantic_config__ = _STRICT_KEYS

    large_table_rows: int
    restructuring_tables: int
    rules: dict[str, Level]
    levels: dict[Level, LevelInfo]

    def __post_init__(self) -> None:
        """pydantic says this ValueError under ``complexity``."""
        for name, value in (
            ("large_table_rows", self.large_table_rows),
            ("restructuring_tables", self.restructuring_tables),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0")

    def level_of(self, rule: str) -> Level:
        return self.rules[rule]


@dataclass(frozen=True)
class ApprovalRequirement:
    """Who signs a plan off, for one environment tier and complexity."""

    __pydantic_config__ = _STRICT_KEYS

    approvers: list[str]
    reviews: list[str]
    documentation: list[str]
    rehearsal_required: bool = False


def split_approvals(data: Mapping[str, Any]) -> dict[str, Any]:
    """``approvals:`` as written (environment tiers beside the scalar settings) with the tiers gathered
    under ``matrix``."""
    return {
        "matrix": {k: v for k, v in data.items() if k not in APPROVAL_SCALARS},
        **{k: v for k, v in data.items() if k in APPROVAL_SCALARS},
    }


@dataclass(frozen=True)
class PlanningRules:
    """The policy as planning reads it."""

    max_file_bytes: int
    complexity: ComplexityPolicy
    matrix: Mapping[str, Mapping[Level, ApprovalRequirement]]
    # what the bot's runner sets when it applies a file: the analysis says where it matters
    runner_settings: Mapping[str, str]
    checklist: Mapping[str, list[str]]

    def requirement(self, tier: str, level: Level) -> ApprovalRequirement:
        return self.matrix[tier][level]

    @classmethod
    def from_valid(cls, policy: Mapping[str, Any]) -> PlanningRules:
        """From policy data known to be valid (the shipped defaults): built as pydantic would, unchecked."""
        complexity = policy["complexity"]
        matrix = split_approvals(policy["approvals"])["matrix"]
        execution = policy["execution"]
        return cls(
            max_file_bytes=policy["planning"]["max_file_bytes"],
            complexity=ComplexityPolicy(
                large_table_rows=complexity["large_table_rows"],
                restructuring_tables=complexity["restructuring_tables"],
                rules={rule: Level(level) for rule, level in complexity["rules"].items()},
                levels={Level(level): LevelInfo(**info) for level, info in complexity["levels"].items()},
            ),
            matrix={
                tier: {Level(level): ApprovalRequirement(**cell) for level, cell in cells.items()}
                for tier, cells in matrix.items()
            },
            runner_settings={key: execution[key] for key in ("lock_timeout", "statement_timeout")},
            checklist=policy["checklist"],
        )


@dataclass(frozen=True)
class PlanEnvironment:
    """An environment as planning without a config file sees it: a tier and a migrations directory."""

    name: str
    tier: str
    directory: Path


@dataclass(frozen=True)
class PlanningOnly:
    """Planning with no config file: the default policy and one environment per tier of its approval
    matrix (development, staging, production), so a CI pipeline can ask what production would need."""

    rules: PlanningRules
    environments: Mapping[str, PlanEnvironment]
    default_environment: str = DEFAULT_TIER

    @classmethod
    def defaults(cls, migrations_dir: Path) -> PlanningOnly:
        from bot.policy_defaults import DEFAULTS

        rules = PlanningRules.from_valid(DEFAULTS)
        directory = migrations_dir.resolve()
        return cls(rules, {tier: PlanEnvironment(tier, tier, directory) for tier in rules.matrix})

    def environment(self, name: str | None) -> PlanEnvironment:
        return pick_environment(self.environments, name, self.default_environment)
