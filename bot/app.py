"""Composition root: read configuration once and wire, once, the services the CLI, Slack and jobs share."""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals import Approvals
from bot.clock import Clock, system_clock
from bot.config import BotConfig, Settings
from bot.deps import Deps
from bot.execution import jobs as execution_jobs
from bot.execution.freeze import Freezes
from bot.execution.rehearsing import Rehearsals
from bot.execution.runner import Order, Runner
from bot.execution.schedule import Schedules
from bot.group_cache import StoredGroups
from bot.jobs import Jobs
from bot.monitor.incidents import Incidents
from bot.monitor.reading import EnvironmentReader
from bot.monitor.window import Monitors
from bot.outbox import Outbox
from bot.planning import Planner
from bot.redact import remember
from bot.roles import GroupMembers, RoleDirectory
from bot.secrets import known_secrets
from storage.db import Database


@dataclass
class Services:
    """Everything a request, a command or a job needs, built once per process."""

    settings: Settings
    config: BotConfig
    db: Database
    clock: Clock
    roles: RoleDirectory
    outbox: Outbox
    approvals: Approvals
    planner: Planner
    runner: Runner
    rehearsals: Rehearsals
    freezes: Freezes
    schedules: Schedules
    incidents: Incidents
    monitors: Monitors
    jobs: Jobs | None = None  # this process's scheduler, when it has one (``serve``'s workers)

    def roll_back(self, order: Order) -> None:
        """Carry out a rollback the bot decided (a window's trigger, an incident's button): a persistent
        job of this process's scheduler when it has one, at once otherwise (the CLI, the demo)."""
        if self.jobs is not None:
            execution_jobs.submit(order, self.jobs)
        else:
            self.runner.execute(order)


def build_services(
    settings: Settings,
    config: BotConfig,
    *,
    group_members: GroupMembers | None = None,
    clock: Clock = system_clock,
    upgrade: bool = True,
) -> Services:
    """Open the bot's store, bring its schema up to date (unless ``upgrade`` is off: a worker process,
    whose parent did it), and wire the services on it.

    ``group_members`` reads a Slack user group's members; without it (the CLI, the demo) roles come
    from user ids only.
    """
    remember(known_secrets(config))  # a password a runbook prints matches no pattern: masked by its value
    db = Database(settings.database_url, clock)
    if upgrade:
        db.upgrade()
    roles = RoleDirectory(config.roles, group_members, clock=clock, cache=StoredGroups(db))
    deps = Deps(db, config, roles, Outbox(clock), clock)
    runner = Runner(deps)
    incidents = Incidents(deps, runner)
    # windows on one environment sample within half an interval of each other: one read serves them
    reader = EnvironmentReader(fresh_seconds=config.policy.monitor.interval_seconds / 2)
    runner.watcher = monitors = Monitors(deps, incidents, reader.read)
    services = Services(
        settings=settings,
        config=config,
        db=db,
        clock=clock,
        roles=deps.roles,
        outbox=deps.outbox,
        approvals=Approvals(deps),
        planner=Planner(deps),
        runner=runner,
        rehearsals=Rehearsals(deps, runner),
        freezes=Freezes(deps),
        schedules=Schedules(deps, runner),
        incidents=incidents,
        monitors=monitors,
    )
    incidents.roll_back = services.roll_back
    return services
