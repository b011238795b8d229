"""Planning a migration: read the exact bytes, analyse them, find or generate the rollback, and store it.

``draft_plan`` is pure analysis (the CLI prints it for CI pipelines); ``create_plan`` persists a draft
as a plan awaiting approval; ``bot.planning`` decides whether it may replace an open one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import timeline
from bot.config import BotConfig, EnvironmentConfig
from bot.errors import InvalidState, NotFound, UserError
from bot.execution.segments import plan_segments
from bot.policy import ApprovalRequirement
from bot.sql.analyze import analyze, analyze_parsed
from bot.sql.catalog import Catalog
from bot.sql.model import Analysis, Level, Rollback, RollbackStep, SqlSyntaxError
from bot.sql.parse import ParsedStatement, parse_statements
from bot.sql.rollback import ROLLBACK_SUFFIX, find_rollback, generate_rollback, load_rollback
from bot.states import OPEN_STATES, PlanState, check_transition
from storage.models import PlanRecord

# Plan ids are 64-bit integers in the store; a longer number cannot name one.
MAX_PLAN_ID_DIGITS = 18


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationFile:
    name: str  # path relative to the environment's migrations directory
    path: Path
    sql: str
    sha256: str


@dataclass(frozen=True)
class PlanDraft:
    """Everything a reviewer needs to decide, before anything is stored."""

    environment: str
    tier: str
    migration: MigrationFile
    analysis: Analysis
    rollback: Rollback
    rollback_analysis: Analysis | None
    requirement: ApprovalRequirement

    @property
    def rollback_sha256(self) -> str:
        return sha256(self.rollback.sql)

    def reaches(self, level: Level) -> bool:
        """True when complexity or any hazard is at ``level`` or above (``--fail-on``)."""
        worst = self.analysis.worst_hazard
        return self.analysis.complexity.rank >= level.rank or (worst is not None and worst.rank >= level.rank)


def environment(config: BotConfig, name: str | None) -> EnvironmentConfig:
    """The named environment (the default when None), or a UserError listing the known ones."""
    try:
        return config.environment(name)
    except KeyError as err:
        raise UserError(str(err.args[0])) from None


def resolve_migration(env: EnvironmentConfig, file_arg: str) -> Path:
    """The migration file ``file_arg`` names, which must lie inside the environment's migrations directory."""
    file_arg = file_arg.strip()
    if not file_arg:
        raise UserError("name a migration file, e.g. `054_add_message_bookmarks.sql`")
    try:
        return _resolve(env, file_arg)
    except OSError as err:  # a name too long, a loop of links: no such migration either way
        raise UserError(f"no migration `{file_arg[:80]}`: {err.strerror}") from None


def _resolve(env: EnvironmentConfig, file_arg: str) -> Path:
    root = env.migrations_dir.resolve()
    candidate = Path(file_arg)
    if not candidate.is_absolute():
        candidate = root / candidate
    path = candidate.resolve()
    if not path.is_relative_to(root):
        raise UserError(f"`{file_arg}` is outside the migrations directory of {env.name}")
    if path.name.endswith(ROLLBACK_SUFFIX):
        raise UserError(f"`{file_arg}` is a rollback script; plan the migration it belongs to")
    if path.suffix != ".sql" and path.with_name(path.name + ".sql").is_file():
        path = path.with_name(path.name + ".sql")
    if not path.is_file():
        raise NotFound(f"no migration `{file_arg}` in the migrations directory of {env.name}")
    return path


def _read_sql(path: Path, label: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {label}: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{label} is not UTF-8 text (byte {err.start})") from None
    return text


def read_migration(env: EnvironmentConfig, file_arg: str) -> MigrationFile:
    path = resolve_migration(env, file_arg)
    name = path.relative_to(env.migrations_dir.resolve()).as_posix()
    sql = _read_sql(path, f"`{name}`")
    if not sql.strip():
        raise UserError(f"`{name}` is empty")
    return MigrationFile(name=name, path=path, sql=sql, sha256=sha256(sql))


def _rollback_for(
    migration: MigrationFile, parsed: list[ParsedStatement], catalog: Catalog, lock_timeout: str
) -> Rollback:
    found = find_rollback(migration.path)
    if found is None:
        return generate_rollback(parsed, catalog=catalog, lock_timeout=lock_timeout)
    try:
        return load_rollback(found)
    except SqlSyntaxError as err:
        raise UserError(f"rollback `{found.name}`: {err}") from None


def draft_plan(config: BotConfig, env_name: str | None, file_arg: str, *, catalog: Catalog) -> PlanDraft:
    """Analyse a migration and its rollback for an environment; stores nothing."""
    env = environment(config, env_name)
    migration = read_migration(env, file_arg)
    policy = config.policy
    try:
        parsed = parse_statements(migration.sql)
    except SqlSyntaxError as err:
        raise UserError(f"`{migration.name}`: {err}") from None
    # what the bot's runner sets itself when it runs the file: the analysis says so where it matters
    runner_settings = {
        "lock_timeout": policy.execution.lock_timeout,
        "statement_timeout": policy.execution.statement_timeout,
    }
    analysis = analyze_parsed(
        parsed, catalog=catalog, policy=policy.complexity, runner_settings=runner_settings
    )
    rollback = _rollback_for(migration, parsed, catalog, policy.execution.lock_timeout)
    rollback_analysis = (
        analyze(rollback.sql, catalog=catalog, policy=policy.complexity)
        if rollback.source == "file"
        else None
    )
    return PlanDraft(
        environment=env.name,
        tier=env.tier,
        migration=migration,
        analysis=analysis,
        rollback=rollback,
        rollback_analysis=rollback_analysis,
        requirement=policy.approvals.requirement(env.tier, analysis.complexity),
    )


def _needs_approval(requirement: ApprovalRequirement) -> bool:
    return bool(requirement.approvers or requirement.reviews or requirement.rehearsal_required)


def create_plan(
    session: Session, draft: PlanDraft, *, author: str, channel_id: str | None, now: datetime
) -> PlanRecord:
    """Store ``draft`` as a plan, awaiting approval unless its environment needs none."""
    state = PlanState.AWAITING_APPROVAL if _needs_approval(draft.requirement) else PlanState.APPROVED
    plan = PlanRecord(
        environment=draft.environment,
        file_name=draft.migration.name,
        file_path=str(draft.migration.path),
        sql=draft.migration.sql,
        sha256=draft.migration.sha256,
        rollback_sql=draft.rollback.sql,
        rollback_sha256=draft.rollback_sha256,
        rollback=rollback_to_dict(draft.rollback),
        analysis=draft.analysis.to_dict(),
        rollback_analysis=draft.rollback_analysis.to_dict() if draft.rollback_analysis else None,
        segments=plan_segments(draft.analysis, draft.rollback, draft.rollback_analysis),
        complexity=draft.analysis.complexity.value,
        state=state.value,
        author=author,
        channel_id=channel_id,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    session.flush()
    timeline.record(
        session,
        plan_id=plan.id,
        actor=author,
        kind="planned",
        message=f"planned {draft.migration.name} for {draft.environment}: {draft.analysis.complexity.label} "
        f"complexity, {len(draft.analysis.hazards)} hazard(s), state {state.label}",
        data={"sha256": plan.sha256, "rollback_sha256": plan.rollback_sha256, "complexity": plan.complexity},
    )
    return plan


def supersede(session: Session, older: PlanRecord, newer: PlanRecord) -> None:
    """``newer`` replaces the open plan ``older``, whose approvals stop counting."""
    older.superseded_by = newer.id
    changed = "the migration changed" if older.sha256 != newer.sha256 else "the rollback changed"
    transition(
        session,
        older,
        PlanState.SUPERSEDED,
        actor=newer.author,
        kind="superseded",
        message=f"superseded by plan #{newer.id} ({changed})",
        data={"by": newer.id, "old_sha256": older.sha256, "new_sha256": newer.sha256},
    )


def transition(
    session: Session,
    plan: PlanRecord,
    target: PlanState,
    *,
    actor: str,
    kind: str,
    message: str,
    data: dict[str, Any],
) -> None:
    """Move ``plan`` to ``target`` (refusing what the state machine forbids); record why on its timeline."""
    check_transition(PlanState(plan.state), target)
    plan.state = target.value
    timeline.record(session, plan_id=plan.id, actor=actor, kind=kind, message=message, data=data)


def open_plans_of(session: Session, environment: str, file_name: str) -> list[PlanRecord]:
    """Open plans of one file in one environment (there is at most one, unless planned concurrently)."""
    return list(
        session.scalars(
            select(PlanRecord)
            .where(
                PlanRecord.environment == environment,
                PlanRecord.file_name == file_name,
                PlanRecord.state.in_([s.value for s in OPEN_STATES]),
            )
            .order_by(PlanRecord.id)
        )
    )


def get_plan(session: Session, plan_id: int | str) -> PlanRecord:
    """The plan with id ``plan_id`` (``#12`` and ``12`` both work); NotFound otherwise."""
    text = str(plan_id).strip().lstrip("#")
    if not text.isdigit() or len(text) > MAX_PLAN_ID_DIGITS:
        raise UserError(f"`{plan_id}` is not a plan id; plan ids are numbers like #12")
    plan = session.get(PlanRecord, int(text))
    if plan is None:
        raise NotFound(f"no plan #{text}")
    return plan


def rollback_to_dict(rollback: Rollback) -> dict[str, object]:
    return {
        "source": rollback.source,
        "path": rollback.path,
        "steps": [
            {
                "statement_index": s.statement_index,
                "sql": s.sql,
                "irreversible_reason": s.irreversible_reason,
                "outside": s.outside,
            }
            for s in rollback.steps
        ],
    }


def verify_bytes(plan: PlanRecord) -> None:
    """Refuse when the migration (or its rollback file) on disk is no longer the bytes that were planned.

    Approvals and runs are bound to those bytes; a changed file must be planned again.
    """
    current = Path(plan.file_path)
    on_disk = sha256(_read_sql(current, f"`{plan.file_name}`")) if current.is_file() else None
    if on_disk != plan.sha256:
        what = "was deleted" if on_disk is None else "changed"
        raise InvalidState(
            f"`{plan.file_name}` {what} since plan #{plan.id} was made; plan it again "
            f"(`/migrate plan {plan.file_name} {plan.environment}`)"
        )
    rollback_path = plan.rollback.get("path")
    if plan.rollback.get("source") == "file" and rollback_path:
        path = Path(rollback_path)
        if not path.is_file() or sha256(_read_sql(path, path.name)) != plan.rollback_sha256:
            raise InvalidState(
                f"the rollback script of plan #{plan.id} changed since it was planned; plan it again"
            )


def draft_from_record(config: BotConfig, plan: PlanRecord) -> PlanDraft:
    """The stored plan as a draft again, for re-rendering its message; the policy is today's."""
    env = environment(config, plan.environment)
    analysis = Analysis.from_dict(plan.analysis)
    return PlanDraft(
        environment=plan.environment,
        tier=env.tier,
        migration=MigrationFile(plan.file_name, Path(plan.file_path), plan.sql, plan.sha256),
        analysis=analysis,
        rollback=rollback_from_dict(plan.rollback, plan.rollback_sql),
        rollback_analysis=Analysis.from_dict(plan.rollback_analysis) if plan.rollback_analysis else None,
        requirement=config.policy.approvals.requirement(env.tier, analysis.complexity),
    )


def rollback_from_dict(data: dict[str, Any], sql: str) -> Rollback:
    return Rollback(
        source=data["source"],
        sql=sql,
        steps=[RollbackStep(**step) for step in data["steps"]],
        path=data.get("path"),
    )
