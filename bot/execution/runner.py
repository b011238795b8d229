"""Running an approved plan: the procedure's steps, one at a time, and the way back when one fails.

Requests (``order_*``: from a click, a command, the CLI) are checked here, in any process, and turned
into an ``Order``; ``execute`` carries one out, in the leader's job (or the CLI's own process). Every
step's start and end are committed before they are announced, so a bot that dies mid-step leaves the
step ``running`` in the store; the next leader marks it interrupted and nothing re-runs by itself.

Failure walks the guide's decision tree: an error while applying, or a migration that does not verify
or breaks integrity, is rolled back at once (exactly what was committed); a rollback that fails offers
the restore of the run's backup, behind a confirmation. Maintenance mode, once on, owes the restore of
the application: the plan says so until it ran.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import timeline
from bot.approvals import approval_status
from bot.deps import Service
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.apply import Blocker
from bot.execution.errors import StepFailed
from bot.execution.freeze import Freezes
from bot.execution.steps import (
    RUN,
    ApplyFailed,
    BackfillStopped,
    StepContext,
    StepKind,
    StepState,
    procedure_name,
    procedure_steps,
    target_key,
)
from bot.execution.target import scalar
from bot.execution.windows import check_window
from bot.markup import mention, quote
from bot.plans import environment, get_plan, plan_summary, transition, verify_bytes
from bot.policy import APPROVERS
from bot.rules import PEER_ROLE, display_name
from bot.sql.model import Analysis
from bot.states import PlanState
from storage.models import PlanRecord, StepRecord

log = logging.getLogger(__name__)

S = PlanState
# Plan states a run can start or continue from.
RUNNABLE = frozenset({S.APPROVED, S.RUNNING, S.FAILED})
# Plan states holding their environment's target: no other plan runs there meanwhile.
BUSY = frozenset({S.RUNNING, S.ROLLING_BACK})
# Steps whose failure means the migration on the target is not what was approved: roll back at once.
# How long a rollback waits for the step holding the target (a run told to stop after it) to end.
ROLLBACK_LOCK_WAIT_SECONDS = 600
ROLL_BACK_ON_FAILURE = frozenset({StepKind.APPLY, StepKind.VERIFY, StepKind.INTEGRITY_CHECKS})


@dataclass(frozen=True)
class Order:
    """What to run, for whom: checked when asked, carried out by ``execute``."""

    plan_id: int
    steps: tuple[StepKind, ...]
    operator: str
    reason: str | None = None  # a rollback's or a restore's

    def to_args(self) -> tuple[Any, ...]:
        return (self.plan_id, [s.value for s in self.steps], self.operator, self.reason)


def order_from_args(plan_id: int, steps: list[str], operator: str, reason: str | None) -> Order:
    return Order(plan_id, tuple(StepKind(s) for s in steps), operator, reason)


def target_lock_key(environment: str) -> int:
    """The advisory lock one run holds on its target: same environment name, same key, in any bot."""
    return target_key(f"migrate-bot run {environment}")


class Watcher(Protocol):
    """What watches a run from apply on (the monitor window): told before apply, after it, and when a
    rollback starts; asked whether a finished run is still watched."""

    def before_apply(self, plan_id: int) -> None: ...

    def applied(self, plan_id: int) -> None: ...

    def watching(self, plan_id: int) -> bool: ...

    def stopped(self, plan_id: int, why: str) -> None: ...


class Runner(Service):
    # Set once the services are wired (the watcher needs the runner to roll back).
    watcher: Watcher | None = None

    # --- who may, and what is left --------------------------------------------------------------------

    def runner_roles(self, plan: PlanRecord) -> list[str]:
        """The policy's runners for this plan: its approver roles (``approvers``) and named roles."""
        roles: list[str] = []
        for name in self.config.policy.execution.runners:
            if name == APPROVERS:
                roles += [s.role for s in approval_status(self.config, plan).slots if s.kind == "approval"]
            else:
                roles.append(name)
        return [r for r in dict.fromkeys(roles) if r != PEER_ROLE]

    def check_runner(self, plan_id: int, user: str, *, operator: bool) -> None:
        """``operator``: the CLI, where the person at the terminal is trusted and named. Role lookups may
        ask Slack: outside any transaction."""
        if operator:
            return
        with self.db.session() as session:
            roles = self.runner_roles(get_plan(session, plan_id))
        if not any(self.roles.holds(user, role) for role in roles):
            who = " or ".join(display_name(r) for r in roles) or "nobody (policy.execution.runners)"
            raise Forbidden(f"only {who} may run, abort or roll back plan #{plan_id}")

    def procedure(self, plan: PlanRecord) -> list[StepKind]:
        return procedure_steps(self.config, self._procedure_name(plan))

    def _procedure_name(self, plan: PlanRecord) -> str:
        return procedure_name(self.config, plan.environment, plan_summary(plan), plan.procedure)

    def steps(self, session: Session, plan_id: int) -> list[StepRecord]:
        return list(
            session.scalars(select(StepRecord).where(StepRecord.plan_id == plan_id).order_by(StepRecord.id))
        )

    def latest(self, session: Session, plan_id: int) -> dict[StepKind, StepRecord]:
        """Each step's latest attempt."""
        return {StepKind(step.step): step for step in self.steps(session, plan_id)}

    def remaining(self, session: Session, plan: PlanRecord) -> list[StepKind]:
        latest = self.latest(session, plan.id)
        return [k for k in self.procedure(plan) if k not in latest or latest[k].state != StepState.DONE]

    def owed(self, session: Session, plan: PlanRecord) -> list[str]:
        """What a stopped run still owes: the application back after maintenance mode."""
        latest = self.latest(session, plan.id)
        on, off = latest.get(StepKind.MAINTENANCE_ON), latest.get(StepKind.MAINTENANCE_OFF)
        if on and on.state == StepState.DONE and not (off and off.state == StepState.DONE):
            return [f"the application is in maintenance mode (`/migrate run {plan.id} maintenance_off`)"]
        return []

    # --- requests ---------------------------------------------------------------------------------------

    def order_run(
        self,
        plan_id: int | str,
        *,
        user: str,
        what: str = "next",
        operator: bool = False,
        override_reason: str | None = None,
    ) -> Order:
        """``what``: ``next``, ``all``, or a step's name. Refuses what may not run, saying why: a frozen
        environment; a plan that needs downtime outside the environment's maintenance windows, unless an
        approver overrides with ``override_reason``."""
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            self._check_runnable(session, plan)
            override = check_window(
                self.config, plan, self.clock(), user=user, override_reason=override_reason
            )
            remaining = self.remaining(session, plan)
            if what == "all":
                steps = remaining
            elif what == "next":
                steps = remaining[:1]
            else:
                try:
                    steps = [StepKind(what)]
                except ValueError:
                    known = ", ".join(k.value for k in self.procedure(plan))
                    raise UserError(
                        f"`{what}` is not a step of plan #{plan.id} (its steps: {known})"
                    ) from None
                if steps[0] not in self.procedure(plan):
                    raise UserError(
                        f"plan #{plan.id} runs the {self._procedure_name(plan)} "
                        f"procedure, which has no {steps[0].value} step"
                    )
            if not steps:
                raise InvalidState(f"every step of plan #{plan.id} is done")
        self.check_runner(plan.id, user, operator=operator)
        if override is not None:
            override.check(self.roles, operator=operator)
            with self.db.session() as session:
                override.record(session, get_plan(session, plan.id), self.outbox)
        return Order(plan.id, tuple(steps), user)

    def _check_runnable(self, session: Session, plan: PlanRecord) -> None:
        state = PlanState(plan.state)
        if state not in RUNNABLE:
            raise InvalidState(f"plan #{plan.id} is {state.label}; only an approved plan runs")
        Freezes.check_not_frozen(session, plan.environment)
        if plan.segments is None or plan.segments.get("problem"):
            problem = (plan.segments or {}).get("problem") or "it was planned before the bot could run plans"
            raise InvalidState(f"plan #{plan.id} cannot be run: {problem}; plan it again")
        env = environment(self.config, plan.environment)
        if not env.dsn():
            raise UserError(f"{env.name} has no target database: set {env.dsn_env or 'its dsn_env'}")
        verify_bytes(plan)
        other = session.scalars(
            select(PlanRecord).where(
                PlanRecord.environment == plan.environment,
                PlanRecord.id != plan.id,
                PlanRecord.state.in_([s.value for s in BUSY]),
            )
        ).first()
        if other is not None:
            raise InvalidState(
                f"plan #{other.id} (`{other.file_name}`) is {PlanState(other.state).label} on "
                f"{plan.environment} since {other.updated_at:%Y-%m-%d %H:%M} UTC: one run at a time"
            )

    def check_rollback(self, plan_id: int | str, *, user: str, operator: bool = False) -> int:
        """Raise why ``user`` may not roll the plan back now; its id otherwise (asked before a modal)."""
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            state = PlanState(plan.state)
            if state not in {S.RUNNING, S.FAILED, S.ROLLBACK_FAILED, S.MONITORING, S.COMPLETED}:
                raise InvalidState(f"plan #{plan.id} is {state.label}; there is no run to roll back")
        self.check_runner(plan.id, user, operator=operator)
        return plan.id

    def order_rollback(self, plan_id: int | str, *, user: str, reason: str, operator: bool = False) -> Order:
        reason = reason.strip()
        if not reason:
            raise UserError("say why the plan is rolled back")
        return Order(
            self.check_rollback(plan_id, user=user, operator=operator), (StepKind.ROLLBACK,), user, reason
        )

    def restore_warning(self, plan_id: int | str) -> str:
        """What a restore overwrites, for the person who must confirm it."""
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            backup = self.latest(session, plan.id).get(StepKind.BACKUP)
            if PlanState(plan.state) is not S.ROLLBACK_FAILED:
                raise InvalidState(
                    f"plan #{plan.id} is {PlanState(plan.state).label}; a restore is offered only when its "
                    "rollback failed"
                )
            if backup is None or backup.state != StepState.DONE:
                raise InvalidState(f"plan #{plan.id} has no backup to restore")
            tables = plan_summary(plan).tables.joined() or "its tables"
            return (
                f"Restoring `{quote(backup.output['path'])}` (taken {backup.finished_at:%Y-%m-%d %H:%M} "
                f"UTC) drops and recreates every object it holds on {plan.environment}, {quote(tables)} "
                "among them: every change made since the backup is lost."
            )

    def order_restore(
        self, plan_id: int | str, *, user: str, confirmed: bool, operator: bool = False
    ) -> Order:
        warning = self.restore_warning(plan_id)
        if not confirmed:
            raise UserError(f"{warning} Confirm to restore.")
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
        self.check_runner(plan.id, user, operator=operator)
        return Order(plan.id, (StepKind.RESTORE,), user, "the rollback failed")

    def abort(self, plan_id: int | str, *, user: str, operator: bool = False) -> PlanRecord:
        """Stop the run after the step that is running; nothing half-done is left by an abort."""
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            if PlanState(plan.state) not in {S.RUNNING, S.ROLLING_BACK}:
                raise InvalidState(f"plan #{plan.id} is {PlanState(plan.state).label}; nothing runs to abort")
        self.check_runner(plan.id, user, operator=operator)
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            plan.abort_requested = True
            timeline.record(
                session,
                plan_id=plan.id,
                actor=user,
                kind="abort_requested",
                message="abort requested",
                data={},
            )
            self.outbox.thread(
                session, plan, f"🛑 {mention(user)} asked to abort: the run stops after its current step."
            )
        return plan

    # --- carrying an order out ----------------------------------------------------------------------

    def execute(self, order: Order, *, cancelled: Callable[[], bool] | None = None) -> PlanState:
        """Run the order's steps, then what failure calls for; returns the plan's state after."""
        with self.db.session() as session:
            plan = get_plan(session, order.plan_id)
            env = environment(self.config, plan.environment)
            dsn = env.dsn()
        if not dsn:
            raise UserError(f"{env.name} has no target database")
        with self._target_lock(dsn, env.name, order):
            if order.steps == (StepKind.ROLLBACK,):
                return self._rollback(order, dsn, reason=order.reason or "asked for")
            if order.steps == (StepKind.RESTORE,):
                return self._restore(order, dsn)
            return self._run(order, dsn, cancelled)

    @contextmanager
    def _target_lock(self, dsn: str, env: str, order: Order) -> Iterator[None]:
        """One run at a time on a target, whichever bot (or store) it comes from."""
        try:
            conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="migrate-bot")
        except psycopg.Error as err:
            self._note(order.plan_id, f"cannot reach the target of {env}: {err.__class__.__name__}")
            raise UserError(f"cannot reach the target of {env}") from None
        with conn:
            key = target_lock_key(env)
            if not self._locked(conn, key, wait=order.steps == (StepKind.ROLLBACK,)):
                self._note(order.plan_id, "another run holds this target's lock; nothing was started")
                raise InvalidState(f"another run holds the target of {env}; try again when it is done")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    @staticmethod
    def _locked(conn: psycopg.Connection, key: int, *, wait: bool) -> bool:
        """Take the target's lock; a rollback waits (up to ROLLBACK_LOCK_WAIT_SECONDS) for the step that
        holds it to end, since it must happen, where a run gives up at once."""
        if not wait:
            return bool(scalar(conn, "SELECT pg_try_advisory_lock(%s)", (key,)))
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{ROLLBACK_LOCK_WAIT_SECONDS}s",))
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            return False
        return True

    def _move(
        self,
        session: Session,
        plan: PlanRecord,
        target: PlanState,
        *,
        actor: str,
        kind: str,
        message: str,
        news: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> PlanState:
        """A state change of the run, on the timeline, owed to the plan's thread and message."""
        transition(session, plan, target, actor=actor, kind=kind, message=message, data=data or {})
        if news is not None:
            owed = "; ".join(self.owed(session, plan))
            self.outbox.thread(session, plan, news + (f" Owed: {owed}." if owed else ""))
        self.outbox.redraw(session, plan)
        return target

    def _note(self, plan_id: int, text: str) -> None:
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            self.outbox.thread(session, plan, f"⚠️ {text}")

    def _run(self, order: Order, dsn: str, cancelled: Callable[[], bool] | None) -> PlanState:
        for kind in order.steps:
            with self.db.session() as session:
                plan = get_plan(session, order.plan_id)
                if plan.abort_requested:
                    plan.abort_requested = False
                    timeline.record(
                        session,
                        plan_id=plan.id,
                        actor="bot",
                        kind="aborted",
                        message=f"aborted before {kind.label}",
                        data={},
                    )
                    self.outbox.thread(
                        session, plan, f"🛑 Aborted before *{kind.label}*. {self._next_hint(plan)}"
                    )
                    self.outbox.redraw(session, plan)
                    return PlanState(plan.state)
            failure = self._perform(order, kind, dsn, cancelled)
            if failure is not None:
                return self._failed(order, kind, failure, dsn)
        return self._after_steps(order.plan_id)

    def _perform(
        self, order: Order, kind: StepKind, dsn: str, cancelled: Callable[[], bool] | None = None
    ) -> StepFailed | None:
        """One step, start to finish, each end committed before it is announced; its failure, if any."""
        step = self._start(order, kind)
        if kind is StepKind.APPLY and self.watcher:
            self.watcher.before_apply(order.plan_id)  # the baseline, before anything changes
        try:
            output, summary = RUN[kind](self._context(order, step, dsn, cancelled or (lambda: False)))
        except StepFailed as failure:
            committed = {"committed": list(failure.committed)} if isinstance(failure, ApplyFailed) else {}
            self._finish(step, StepState.FAILED, committed, failure.message)
            return failure
        self._finish(step, StepState.DONE, {**output, "summary": summary}, None)
        if kind is StepKind.APPLY and self.watcher:
            self.watcher.applied(order.plan_id)
        return None

    def _next_hint(self, plan: PlanRecord) -> str:
        return f"`/migrate run {plan.id}` continues, `/migrate rollback {plan.id} <reason>` undoes what ran."

    def _start(self, order: Order, kind: StepKind) -> StepRecord:
        """Commit the step as running (and the plan as running) before anything is said or done."""
        with self.db.session() as session:
            plan = get_plan(session, order.plan_id)
            verify_bytes(plan)  # the exact bytes approved, before every step
            state = PlanState(plan.state)
            if state in {S.APPROVED, S.FAILED} and kind not in {StepKind.ROLLBACK, StepKind.RESTORE}:
                if plan.procedure is None:
                    plan.procedure = self._procedure_name(plan)
                transition(
                    session,
                    plan,
                    S.RUNNING,
                    actor=order.operator,
                    kind="run_started" if state is S.APPROVED else "run_resumed",
                    message=f"run {'started' if state is S.APPROVED else 'resumed'} ({plan.procedure})",
                    data={"procedure": plan.procedure, "sha256": plan.sha256},
                )
            attempt = sum(1 for s in self.steps(session, plan.id) if s.step == kind.value) + 1
            step = StepRecord(
                plan_id=plan.id,
                step=kind.value,
                state=StepState.RUNNING.value,
                attempt=attempt,
                operator=order.operator,
                output={"runner": RUNNER_ID},
                started_at=self.clock(),
            )
            session.add(step)
            session.flush()
            timeline.record(
                session,
                plan_id=plan.id,
                actor=order.operator,
                kind="step_started",
                message=f"{kind.label} started",
                data={"step": kind.value, "attempt": attempt},
            )
            self.outbox.step(session, plan, step.id)
            self.outbox.redraw(session, plan)
            return step

    def _finish(self, step: StepRecord, state: StepState, output: dict[str, Any], error: str | None) -> None:
        with self.db.session() as session:
            stored = session.get(StepRecord, step.id)
            assert stored is not None
            stored.state, stored.output, stored.error = state.value, {**stored.output, **output}, error
            stored.finished_at = self.clock()
            plan = get_plan(session, stored.plan_id)
            label = StepKind(stored.step).label
            timeline.record(
                session,
                plan_id=plan.id,
                actor="bot",
                kind=f"step_{state.value}",
                message=f"{label} {state.value}" + (f": {error}" if error else ""),
                data={
                    "step": stored.step,
                    "attempt": stored.attempt,
                    "output": stored.output,
                    "error": error,
                },
            )
            self.outbox.step(session, plan, stored.id)
            self.outbox.redraw(session, plan)

    def _context(
        self, order: Order, step: StepRecord, dsn: str, cancelled: Callable[[], bool] | None
    ) -> StepContext:
        with self.db.session() as session:
            plan = get_plan(session, order.plan_id)
            done = {
                kind.value: s.output
                for kind, s in self.latest(session, plan.id).items()
                if s.state == StepState.DONE
            }
            facts = (plan.id, plan.file_name, plan.sha256, plan.environment, plan.analysis, plan.segments)
        plan_id, file_name, sha256, env_name, analysis, segments = facts
        return StepContext(
            plan_id=plan_id,
            file_name=file_name,
            sha256=sha256,
            environment=environment(self.config, env_name),
            config=self.config,
            dsn=dsn,
            operator=order.operator,
            analysis=Analysis.from_dict(analysis),
            segments=segments or {},
            earlier=done,
            now=self.clock,
            attempt=step.attempt,
            progress=self._progress(step),
            lock_wait=self._lock_wait(plan_id),
            cancelled=cancelled or self._abort_asked(plan_id),
            committed=self._committed(plan_id),
            saved=self._saved(plan_id, StepKind(step.step)),
            save=self._saver(step),
        )

    def _saved(self, plan_id: int, kind: StepKind) -> dict[str, Any]:
        """What earlier attempts of this step kept to resume from (a backfill's last batch)."""
        with self.db.session() as session:
            attempts = [s for s in self.steps(session, plan_id) if s.step == kind.value]
            kept: dict[str, Any] = {}
            for attempt in attempts:
                kept.update(attempt.output.get("saved", {}))
            return kept

    def _saver(self, step: StepRecord) -> Callable[[str, Any], None]:
        def save(key: str, value: Any) -> None:
            with self.db.session() as session:
                stored = session.get(StepRecord, step.id)
                assert stored is not None
                stored.output = {**stored.output, "saved": {**stored.output.get("saved", {}), key: value}}

        return save

    def _progress(self, step: StepRecord) -> Callable[[str], None]:
        """A step's progress redraws its line, at most every few seconds."""
        last = [0.0]
        lock = threading.Lock()

        def progress(text: str) -> None:
            now = self.clock().timestamp()
            with lock:
                if now - last[0] < PROGRESS_EVERY_SECONDS:
                    return
                last[0] = now
            with self.db.session() as session:
                stored = session.get(StepRecord, step.id)
                assert stored is not None
                stored.output = {**stored.output, "progress": text}
                self.outbox.step(session, get_plan(session, stored.plan_id), stored.id)

        return progress

    def _lock_wait(self, plan_id: int) -> Callable[[list[Blocker]], None]:
        def waiting(blockers: list[Blocker]) -> None:
            lines = [
                f"• pid {b.pid} ({quote(b.application_name or '?')}, {quote(b.user or '?')}, {b.state or '?'}"
                + (f", since {b.since:%H:%M:%S} UTC" if b.since else "")
                + (f", holds {b.lock_mode} on {quote(b.relation)}" if b.lock_mode and b.relation else "")
                + f"): `{quote(b.query[:200])}`"
                for b in blockers
            ]
            with self.db.session() as session:
                plan = get_plan(session, plan_id)
                text = (
                    "⏳ Waiting for a lock; held by:\n" + "\n".join(lines)
                    if lines
                    else "⏳ The lock wait is over."
                )
                self.outbox.thread(session, plan, text)
                timeline.record(
                    session,
                    plan_id=plan_id,
                    actor="bot",
                    kind="lock_wait",
                    message=text,
                    data={"blockers": [b.pid for b in blockers]},
                )

        return waiting

    def _abort_asked(self, plan_id: int) -> Callable[[], bool]:
        def asked() -> bool:
            with self.db.session() as session:
                return bool(get_plan(session, plan_id).abort_requested)

        return asked

    def _committed(self, plan_id: int) -> tuple[int, ...]:
        """Statements of the migration the target holds: from apply's success or its failure."""
        with self.db.session() as session:
            apply = self.latest(session, plan_id).get(StepKind.APPLY)
            return tuple(apply.output.get("committed", [])) if apply else ()

    def _failed(self, order: Order, kind: StepKind, failure: StepFailed, dsn: str) -> PlanState:
        applied = bool(self._committed(order.plan_id))
        with self.db.session() as session:
            plan = get_plan(session, order.plan_id)
            transition(
                session,
                plan,
                S.FAILED,
                actor="bot",
                kind="run_failed",
                message=f"{kind.label} failed: {failure.message}",
                data={"step": kind.value},
            )
            if isinstance(failure, BackfillStopped):
                self.outbox.thread(
                    session,
                    plan,
                    f"❌ *{kind.label}* stopped part-way through a batched UPDATE: its batches so far are "
                    f"committed. `/migrate run {plan.id} apply` resumes after the last one; "
                    f"`/migrate rollback {plan.id} <reason>` undoes what can be undone.",
                )
                return S.FAILED
            if not (kind in ROLL_BACK_ON_FAILURE and applied):
                self.outbox.thread(
                    session, plan, f"❌ *{kind.label}* failed. {self._after_failure(session, plan)}"
                )
                return S.FAILED
            self.outbox.thread(
                session,
                plan,
                f"❌ *{kind.label}* failed: rolling back what was applied, as the procedure says.",
            )
        return self._rollback(
            Order(order.plan_id, (StepKind.ROLLBACK,), "bot"), dsn, reason=f"{kind.label} failed"
        )

    def _after_failure(self, session: Session, plan: PlanRecord) -> str:
        owed = "; ".join(self.owed(session, plan))
        return (
            f"Nothing of the migration is applied. `/migrate run {plan.id}` tries the step again, "
            f"`/migrate rollback {plan.id} <reason>` ends the run." + (f" Owed: {owed}." if owed else "")
        )

    def _rollback(self, order: Order, dsn: str, *, reason: str) -> PlanState:
        committed = self._committed(order.plan_id)
        with self.db.session() as session:
            plan = get_plan(session, order.plan_id)
            if not committed and PlanState(plan.state) in {S.RUNNING, S.FAILED}:
                return self._move(
                    session,
                    plan,
                    S.CANCELLED,
                    actor=order.operator,
                    kind="run_cancelled",
                    message=f"run ended, nothing was applied: {reason}",
                    news="⏹️ Run ended: nothing of the migration was applied.",
                    data={"reason": reason},
                )
            transition(
                session,
                plan,
                S.ROLLING_BACK,
                actor=order.operator,
                kind="rolling_back",
                message=f"rolling back: {reason}",
                data={"reason": reason, "committed": list(committed)},
            )
        if self.watcher:
            self.watcher.stopped(order.plan_id, f"rolled back: {reason}")
        failure = self._perform(order, StepKind.ROLLBACK, dsn)
        if failure is not None:
            with self.db.session() as session:
                self._move(
                    session,
                    get_plan(session, order.plan_id),
                    S.ROLLBACK_FAILED,
                    actor="bot",
                    kind="rollback_failed",
                    message=f"rollback failed: {failure.message}",
                    news=f"🆘 The rollback failed. `/migrate restore {order.plan_id}` restores the backup "
                    "(it asks you to confirm what it overwrites); or roll back by hand and tell the team.",
                )
            return S.ROLLBACK_FAILED
        with self.db.session() as session:
            return self._move(
                session,
                get_plan(session, order.plan_id),
                S.ROLLED_BACK,
                actor="bot",
                kind="rolled_back",
                message=f"rolled back: {reason}",
                news="↩️ Rolled back: the target is as it was before the migration.",
                data={"reason": reason},
            )

    def _restore(self, order: Order, dsn: str) -> PlanState:
        if self._perform(order, StepKind.RESTORE, dsn) is not None:
            return S.ROLLBACK_FAILED
        with self.db.session() as session:
            return self._move(
                session,
                get_plan(session, order.plan_id),
                S.RESTORED,
                actor=order.operator,
                kind="restored",
                message="restored from the run's backup",
                news="💾 Restored from the backup taken before the migration.",
            )

    def _after_steps(self, plan_id: int) -> PlanState:
        watched = self.watcher is not None and self.watcher.watching(plan_id)
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            if self.remaining(session, plan):
                self.outbox.thread(session, plan, f"⏸️ Paused. {self._next_hint(plan)}")
                self.outbox.redraw(session, plan)
                return PlanState(plan.state)
            if watched:
                return self._move(
                    session,
                    plan,
                    S.MONITORING,
                    actor="bot",
                    kind="monitoring",
                    message="every step of the procedure is done; the monitor window runs",
                    news=f"🏁 Every step of plan #{plan.id} passed; its monitor window watches on. "
                    f"{mention(plan.author)}",
                    data={"procedure": plan.procedure},
                )
            return self._move(
                session,
                plan,
                S.COMPLETED,
                actor="bot",
                kind="completed",
                message="every step of the procedure is done",
                news=f"🏁 Plan #{plan.id} is done: every step passed. {mention(plan.author)}",
                data={"procedure": plan.procedure},
            )

    # --- after a restart ------------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Steps left running by a bot that died: interrupted, said so, never re-run by themselves (a step
        that a live process of this host still runs, the CLI's say, is left alone)."""
        with self.db.session() as session:
            running = [
                step
                for step in session.scalars(
                    select(StepRecord).where(StepRecord.state == StepState.RUNNING.value)
                )
                if not runner_alive(step.output.get("runner"))
            ]
            for step in running:
                step.state, step.finished_at = StepState.INTERRUPTED.value, self.clock()
                step.error = "the bot stopped while this step ran"
                plan = get_plan(session, step.plan_id)
                label = StepKind(step.step).label
                timeline.record(
                    session,
                    plan_id=plan.id,
                    actor="bot",
                    kind="step_interrupted",
                    message=f"{label} interrupted by a restart",
                    data={"step": step.step},
                )
                owed = "; ".join(self.owed(session, plan))
                self.outbox.step(session, plan, step.id)
                self.outbox.thread(
                    session,
                    plan,
                    f"⚠️ *{label}* was interrupted: the bot stopped while it ran, and it will not run again "
                    f"by itself. Check the target, then `/migrate run {plan.id} {step.step}` to retry it or "
                    f"`/migrate rollback {plan.id} <reason>`." + (f" Owed: {owed}." if owed else ""),
                )
                self.outbox.redraw(session, plan)
            return [s.plan_id for s in running]


# A step's line is redrawn at most this often while it reports progress.
PROGRESS_EVERY_SECONDS = 5.0
# Who runs a step: this host and process, so a restart can tell a dead runner from a live one.
RUNNER_ID = f"{socket.gethostname()}:{os.getpid()}"


def runner_alive(runner: str | None) -> bool:
    """A process of this host other than this one, still there: what a restart must leave alone."""
    host, _, pid = (runner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    return True
