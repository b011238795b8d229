"""Where the work path runs: the pools, what each job gets, and what runs beside the jobs.

With ``serve.isolation: processes`` (the default) each pool is a set of processes that build their own
services and Slack client once, at start; the decisions processes also run the outbox's deliverer and
the scheduled jobs (the leader among them does the work). With ``threads`` everything runs here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient

from bot import jobs
from bot.app import Services, build_services
from bot.config import BotConfig, Settings
from bot.delivery import Deliverer
from bot.execution import jobs as execution_jobs
from bot.jobs import Jobs
from bot.leader import LeaderLoop
from bot.logs import configure_logging
from bot.monitor.loop import MonitorLoop
from bot.outbox import TOPIC
from bot.workers import Priority, ProcessPool, ThreadPool, WorkPool, parent_alive
from handlers.slack_notifier import SlackNotifier, make_client, slack_group_members
from storage.leader import Leadership

log = logging.getLogger(__name__)

EXPIRY_SWEEP_MINUTES = 10
# How long a stopping bot lets queued and running work finish.
DRAIN_SECONDS = 20
# On a busy machine the process acknowledging Slack goes first, then decisions, then planning (which
# only gets CPU nobody else wants).
DECISIONS_PRIORITY = Priority(niceness=10)
WORK_PRIORITY = Priority(niceness=19, idle=True)
# How long starting the pool processes (their imports) may take.
WARM_UP_SECONDS = 60


@dataclass(frozen=True)
class Worker:
    """What a job gets: the domain services and a Slack client, of the process it runs in."""

    services: Services
    client: WebClient


@dataclass(frozen=True)
class Pools:
    work: WorkPool  # slow work: planning
    decisions: WorkPool  # quick work: clicks, modals, status, list, repost

    def shutdown(self, timeout: float = DRAIN_SECONDS) -> None:
        for pool in (self.work, self.decisions):
            pool.shutdown(timeout=timeout)


class Runtime:
    """What runs beside the jobs: the outbox's deliverer, the scheduled jobs and the monitor's watch, on
    the leader only."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        assert settings.slack_bot_token is not None
        token = settings.slack_bot_token.get_secret_value()
        self.services = services
        self.deliverer = Deliverer(
            db=services.db,
            config=services.config,
            notifier=SlackNotifier(make_client(token, settings.slack_api_url, retries=False)),
            clock=services.clock,
            wanted=parent_alive,
        )
        services.db.on_commit(TOPIC, self.deliverer.wake)
        self.leadership = Leadership(services.db.engine)
        self.jobs = services.jobs = Jobs(services)
        jobs.install(services)
        self.loop = LeaderLoop(
            deliverer=self.deliverer,
            jobs=self.jobs,
            watch=MonitorLoop(services.monitors, services.incidents),
            leadership=self.leadership,
            on_becoming_leader=self._took_over,
        )

    def _took_over(self) -> None:
        """What a new leader does first: steps and rehearsals the last one left running are interrupted
        (never re-run by themselves), queued rehearsals whose job was lost are queued again, and the
        recurring jobs exist (once, whoever added them)."""
        self.services.runner.recover()
        self.services.rehearsals.recover()
        execution_jobs.requeue_rehearsals(self.jobs)
        self.services.schedules.missed()
        self.jobs.add(jobs.sweep_expired, job_id="expire-plans", every_minutes=EXPIRY_SWEEP_MINUTES)

    def start(self) -> Runtime:
        self.loop.start()
        return self

    def stop(self) -> None:
        self.loop.stop(DRAIN_SECONDS)


def start_worker(settings: Settings, config: BotConfig, deliver: bool) -> Worker:
    """Start a pool process: its logging, Slack client and services; with ``deliver``, the runtime."""
    configure_logging(settings)
    assert settings.slack_bot_token is not None
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    services = build_services(settings, config, group_members=slack_group_members(client), upgrade=False)
    if deliver:
        Runtime(services).start()  # runs until the process ends with its pool
    return Worker(services, client)


def process_pools(settings: Settings, config: BotConfig) -> Pools:
    serve = config.serve
    pools = Pools(
        work=ProcessPool(
            "work", serve.workers, start_worker, (settings, config, False), priority=WORK_PRIORITY
        ),
        decisions=ProcessPool(
            "decisions",
            serve.decision_workers,
            start_worker,
            (settings, config, True),
            priority=DECISIONS_PRIORITY,
        ),
    )
    for pool in (pools.work, pools.decisions):
        assert isinstance(pool, ProcessPool)
        pool.warm_up(WARM_UP_SECONDS)
    return pools


def thread_pools(worker: Worker) -> Pools:
    serve = worker.services.config.serve
    return Pools(
        work=ThreadPool("work", serve.workers, worker),
        decisions=ThreadPool("decisions", serve.decision_workers, worker),
    )
