"""Planning a migration with nothing stored: read the exact bytes, analyse them, find or generate the
rollback.

``draft_plan`` is what the CLI prints for CI pipelines and what ``bot.plans`` stores; it needs neither the
bot's store, nor Slack, nor the config file's models (any ``PlanningConfig`` will do: the bot's
``BotConfig``, or ``bot.rules.PlanningOnly`` without a config file), so ``migrate-bot plan`` loads none
of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.errors import NotFound, UserError
from bot.memory import no_cycle_collection
from bot.rules import ApprovalRequirement, ComplexityPolicy, PlanningRules
from bot.sql.analyze import analyze, analyze_parsed
from bot.sql.catalog import Catalog
from bot.sql.model import Analysis, Level, Rollback, RollbackStep, SqlSyntaxError, flat_dict
from bot.sql.parse import ParsedStatement, iter_statements
from bot.sql.rollback import ROLLBACK_SUFFIX, RollbackBuilder, file_rollback, find_rollback

if TYPE_CHECKING:
    from bot.git_source import Checkout


HASHED_CHARS = 1 << 20
E = TypeVar("E", covariant=True)
T = TypeVar("T")


class Environment(Protocol):
    """An environment as planning reads it (``EnvironmentConfig``, ``bot.rules.PlanEnvironment``)."""

    @property
    def name(self) -> str: ...
    @property
    def tier(self) -> str: ...
    @property
    def directory(self) -> Path: ...


class Environments(Protocol[E]):
    def environment(self, name: str | None) -> E:
        """The named environment (the default one when None); KeyError names the known ones."""
        ...


class PlanningConfig(Environments[Environment], Protocol):
    @property
    def rules(self) -> PlanningRules: ...


def sha256(text: str) -> str:
    """Of the text's UTF-8, encoded a megabyte at a time: a 10 MB file's generated rollback is 24 MB of it,
    which encoded whole was the peak of writing its plan."""
    digest = hashlib.sha256()
    for start in range(0, len(text), HASHED_CHARS):
        digest.update(text[start : start + HASHED_CHARS].encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class MigrationFile:
    """A migration's exact bytes, as read for a plan."""

    name: str  # path relative to the environment's migrations directory
    path: Path
    sql: str
    sha256: str
    commit: str = ""  # the git commit it was read at; "" for a plain directory


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


def environment(config: Environments[T], name: str | None) -> T:
    """The named environment (the default when None), or a UserError listing the known ones."""
    try:
        return config.environment(name)
    except KeyError as err:
        raise UserError(str(err.args[0])) from None


def resolve_migration(env: Environment, file_arg: str) -> Path:
    """The migration file ``file_arg`` names, which must lie inside the environment's migrations directory."""
    file_arg = file_arg.strip()
    if not file_arg:
        raise UserError("name a migration file, e.g. `054_add_message_bookmarks.sql`")
    try:
        return _resolve(env, file_arg)
    except OSError as err:  # a name too long, a loop of links: no such migration either way
        raise UserError(f"no migration `{file_arg[:80]}`: {err.strerror}") from None


def _resolve(env: Environment, file_arg: str) -> Path:
    root = env.directory.resolve()
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


def read_sql(path: Path, label: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {label}: {err.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{label} is not UTF-8 text (byte {err.start})") from None
    return text


def check_size(path: Path, label: str, max_bytes: int) -> None:
    """Refuse a file over the policy's limit before reading it: planning holds it and its analysis in
    memory, and a stored plan is about twenty times its size."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise UserError(f"cannot read {label}: {err.strerror}") from None
    if size > max_bytes:
        raise UserError(
            f"{label} is {size:,} bytes, over the {max_bytes:,} a plan may read "
            "(policy planning.max_file_bytes): split it into smaller migrations"
        )


def read_migration(env: Environment, file_arg: str, *, max_bytes: int) -> MigrationFile:
    path = resolve_migration(env, file_arg)
    name = path.relative_to(env.directory.resolve()).as_posix()
    check_size(path, f"`{name}`", max_bytes)
    sql = read_sql(path, f"`{name}`")
    if not sql.strip():
        raise UserError(f"`{name}` is empty")
    return MigrationFile(name=name, path=path, sql=sql, sha256=sha256(sql))


def _rollback_file(path: Path, catalog: Catalog, policy: ComplexityPolicy) -> tuple[Rollback, Analysis]:
    """A hand-written rollback beside the migration, read and analysed once (a file that is not UTF-8, or
    does not parse, is refused with its name)."""
    label = f"rollback `{path.name}`"
    sql = read_sql(path, label)
    try:
        analysis = analyze(sql, catalog=catalog, policy=policy)
    except SqlSyntaxError as err:
        raise UserError(f"{label}: {err}") from None
    return file_rollback(sql, path), analysis


def _also_to(builder: RollbackBuilder | None, parsed: Iterator[ParsedStatement]) -> Iterator[ParsedStatement]:
    """Each statement handed to the rollback builder too, while its parse tree is in memory."""
    for item in parsed:
        if builder is not None:
            builder.add(item)
        yield item


def draft_plan(
    config: PlanningConfig,
    env_name: str | None,
    file_arg: str,
    *,
    catalog: Catalog,
    checkout: Checkout | None = None,
) -> PlanDraft:
    """Analyse a migration and its rollback for an environment (from ``checkout``'s commit when its
    migrations come from git); stores nothing.

    One pass, statement by statement: each is parsed, analysed and (without a rollback file) undone, then
    its parse tree goes, so a 10 MB file's memory is its analysis, not every tree at once.
    """
    env: Environment = checkout.environment if checkout is not None else environment(config, env_name)
    rules = config.rules
    migration = read_migration(env, file_arg, max_bytes=rules.max_file_bytes)
    if checkout is not None and checkout.commit:
        migration = replace(migration, commit=checkout.commit)
    try:
        parsed = iter_statements(migration.sql)
    except SqlSyntaxError as err:
        raise UserError(f"`{migration.name}`: {err}") from None
    found = find_rollback(migration.path)
    if found is not None:  # before the migration's pass, which a 10 MB file makes long
        check_size(found, f"rollback `{found.name}`", rules.max_file_bytes)
    builder = RollbackBuilder(catalog) if found is None else None
    with no_cycle_collection():
        analysis = analyze_parsed(
            _also_to(builder, parsed),
            catalog=catalog,
            policy=rules.complexity,
            runner_settings=rules.runner_settings,
        )
        rollback_analysis: Analysis | None
        if builder is not None:
            rollback, rollback_analysis = builder.build(rules.runner_settings["lock_timeout"]), None
        else:
            assert found is not None
            rollback, rollback_analysis = _rollback_file(found, catalog, rules.complexity)
    return PlanDraft(
        environment=env.name,
        tier=env.tier,
        migration=migration,
        analysis=analysis,
        rollback=rollback,
        rollback_analysis=rollback_analysis,
        requirement=rules.requirement(env.tier, analysis.complexity),
    )


def rollback_to_dict(rollback: Rollback, *, lazy: bool = False) -> dict[str, object]:
    """JSON-ready; ``lazy`` gives the steps as an iterator (see ``Analysis.to_dict``)."""
    steps = map(flat_dict, rollback.steps)
    return {"source": rollback.source, "path": rollback.path, "steps": steps if lazy else list(steps)}


def rollback_from_dict(data: dict[str, Any], sql: str) -> Rollback:
    return Rollback(
        source=data["source"],
        sql=sql,
        steps=[RollbackStep(**step) for step in data["steps"]],
        path=data.get("path"),
    )
