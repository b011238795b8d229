"""The guide's numbers and matrices as typed data: shipped defaults, overridable from the config YAML.

``load_policy(overrides)`` deep-merges the user's ``policy:`` section onto ``bot/policy_defaults.py``
and validates the result, so "where is the 5% rule?" has one answer: in that file. What planning reads
(``bot.rules``) is plain dataclasses, which these models validate as fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.policy_defaults import DEFAULTS
from bot.rules import ApprovalRequirement, ComplexityPolicy, PlanningRules, split_approvals
from bot.sql.model import Level


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalPolicy(_Model):
    matrix: dict[str, dict[Level, ApprovalRequirement]]
    expire_after_days: float = Field(gt=0)
    review_roles: dict[str, str]
    distinct_approvers: bool

    @model_validator(mode="before")
    @classmethod
    def _split_matrix(cls, data: Any) -> Any:
        """In YAML the environments sit beside the scalar settings; gather them as the matrix."""
        if isinstance(data, dict) and "matrix" not in data:
            data = split_approvals(data)
        return data

    @model_validator(mode="after")
    def _every_level_and_review(self) -> ApprovalPolicy:
        for env, by_level in self.matrix.items():
            missing = [lv.value for lv in Level if lv not in by_level]
            if missing:
                raise ValueError(f"approvals.{env}: missing complexity levels {', '.join(missing)}")
            for level, req in by_level.items():
                unknown = [r for r in req.reviews if r not in self.review_roles]
                if unknown:
                    raise ValueError(
                        f"approvals.{env}.{level.value}.reviews: {', '.join(unknown)} "
                        "not listed in approvals.review_roles"
                    )
        return self

    def requirement(self, tier: str, level: Level) -> ApprovalRequirement:
        return self.matrix[tier][level]


STEP_NAMES = (
    "backup",
    "verify_backup",
    "maintenance_on",
    "wait_for_connections",
    "apply",
    "verify",
    "integrity_checks",
    "maintenance_off",
)
APPROVERS = "approvers"  # in execution.runners: the plan's own approver roles


class BackfillPolicy(_Model):
    batch_rows: int = Field(ge=1)
    pause_seconds: float = Field(ge=0)
    max_lock_seconds: float = Field(gt=0)


class ExecutionPolicy(_Model):
    lock_timeout: str
    statement_timeout: str
    max_duration_seconds: float = Field(gt=0)
    connection_drain_timeout_seconds: float = Field(ge=0)
    lock_retries: int = Field(ge=0)
    lock_retry_backoff_seconds: float = Field(ge=0)
    runners: list[str] = Field(min_length=1)
    freezers: list[str] = Field(min_length=1)
    schedule_notice_minutes: float = Field(ge=0)
    command_timeout_seconds: float = Field(gt=0)
    backup_timeout_seconds: float = Field(gt=0)
    procedures: dict[str, list[str]]
    backfill: BackfillPolicy

    @field_validator("procedures")
    @classmethod
    def _known_steps(cls, procedures: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, steps in procedures.items():
            unknown = [s for s in steps if s not in STEP_NAMES]
            if unknown:
                raise ValueError(
                    f"{name}: unknown steps {', '.join(unknown)} (known: {', '.join(STEP_NAMES)})"
                )
            if "apply" not in steps:
                raise ValueError(f"{name}: a procedure must apply the migration")
            if "maintenance_on" in steps and "maintenance_off" not in steps:
                raise ValueError(f"{name}: maintenance_on needs maintenance_off after it")
        return procedures


class RollbackTriggers(_Model):
    error_rate_pct: float = Field(ge=0, le=100)
    error_rate_window_minutes: float = Field(gt=0)
    latency_degradation_pct: float = Field(ge=0)
    health_check_failures: int = Field(ge=1)


class MonitorPolicy(_Model):
    window_minutes: float = Field(ge=0)  # 0: no window; a run ends completed
    interval_seconds: float = Field(gt=0)
    normal_error_rate_pct: float = Field(ge=0, le=100)
    rollback_triggers: RollbackTriggers
    breach_samples: int = Field(ge=1)  # consecutive bad samples before a rule counts as broken
    inconclusive_samples: int = Field(ge=1)  # consecutive unknown samples before a human is asked
    redraw_every_samples: int = Field(ge=1)  # the live message is redrawn this often (and on news)
    reminder_hours: list[float]  # the post-migration checklist's reminders, after the window opened


class Severity(_Model):
    name: str
    examples: list[str]
    error_rate_above_pct: float | None = None
    latency_degradation_above_pct: float | None = None
    response_minutes: float | None
    rollback: Literal["automatic", "after_assessment", "not_required"]
    rollback_after_minutes: float | None


class EscalationLevel(_Model):
    role: str
    after_minutes: float = Field(ge=0)


class EscalationPolicy(_Model):
    chain: list[EscalationLevel] = Field(min_length=1)
    repeat_ping_minutes: float = Field(gt=0)

    @field_validator("chain")
    @classmethod
    def _increasing(cls, chain: list[EscalationLevel]) -> list[EscalationLevel]:
        delays = [lv.after_minutes for lv in chain]
        if delays != sorted(delays):
            raise ValueError("escalation delays must not decrease along the chain")
        return chain


class PlanningPolicy(_Model):
    # a larger file is refused before it is read: a 10 MB file takes seconds and hundreds of MB to plan
    max_file_bytes: int = Field(gt=0)


class Policy(_Model):
    planning: PlanningPolicy
    complexity: ComplexityPolicy
    approvals: ApprovalPolicy
    execution: ExecutionPolicy
    monitor: MonitorPolicy
    severities: dict[str, Severity]  # P0-P3: the defaults name them, and a config adds no other
    escalation: EscalationPolicy
    checklist: dict[str, list[str]]
    post_checklist: dict[str, list[str]]

    def planning_rules(self) -> PlanningRules:
        return PlanningRules(
            max_file_bytes=self.planning.max_file_bytes,
            complexity=self.complexity,
            matrix=self.approvals.matrix,
            runner_settings={
                "lock_timeout": self.execution.lock_timeout,
                "statement_timeout": self.execution.statement_timeout,
            },
            checklist=self.checklist,
        )

    @model_validator(mode="after")
    def _all_severities(self) -> Policy:
        missing = {"P0", "P1", "P2", "P3"} - set(self.severities)
        if missing:
            raise ValueError(f"severities: missing {', '.join(sorted(missing))}")
        return self


def default_policy_data() -> dict[str, Any]:
    """The shipped defaults (bot/policy_defaults.py)."""
    return DEFAULTS


def deep_merge(base: dict[str, Any], override: dict[str, Any], path: str = "policy") -> dict[str, Any]:
    """Merge ``override`` onto ``base``; a key the defaults do not have is refused (typos are bugs).

    Approval environments are the exception: a config may add its own environment tiers.
    """
    merged = dict(base)
    for key, value in override.items():
        where = f"{path}.{key}"
        if key not in base:
            if path != "policy.approvals":
                raise KeyError(f"{where}: unknown setting (known: {', '.join(map(str, base))})")
            merged[key] = value
        elif isinstance(base[key], dict) and isinstance(value, dict):
            merged[key] = deep_merge(base[key], value, where)
        else:
            merged[key] = value
    return merged


def load_policy(overrides: dict[str, Any] | None = None) -> Policy:
    """The default policy with ``overrides`` applied; raises KeyError or pydantic.ValidationError."""
    data = deep_merge(default_policy_data(), overrides or {})
    return Policy.model_validate(data)
