"""Rehearsals of plans: asked for, run by the leader on a scratch copy, reported in the plan's thread,
and the gate they open: a plan whose approvals need a rehearsal is approved only once one of its exact
migration and rollback bytes has passed.

The engine is ``bot.execution.rehearsal`` (up, down, up) on a copy from ``bot.execution.scratch``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import timeline
from bot.approvals import approval_status
from bot.deps import Deps, Service
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.errors import StepFailed
from bot.execution.rehearsal import RehearsalReport, rehearse
from bot.execution.rehearsal_report import report_lines
from bot.execution.runner import RUNNER_ID, Runner, runner_alive
from bot.execution.scratch import drop_scratch, scratch_database
from bot.execution.segments import from_data
from bot.git_source import at_commit
from bot.markup import mention, quote
from bot.plans import environment, get_plan, transition, verify_bytes
from bot.redact import redact
from bot.rules import display_name
from bot.sql.model import Analysis
from bot.sql.rollback import ROLLBACK_SUFFIX
from bot.states import PlanState
from storage.models import PlanRecord, RehearsalRecord

S = PlanState
log = logging.getLogger(__name__)
# Plans that may be rehearsed: before approval (the gate) and after it (before running).
REHEARSABLE = frozenset({S.AWAITING_APPROVAL, S.APPROVED})
# Most synthetic rows per table a rehearsal may be asked for (the config's default is checked too).
MAX_ROWS = 10_000_000


class Rehearsals(Service):
    def __init__(self, deps: Deps, runner: Runner) -> None:
        super().__init__(deps)
        self.runner = runner

    def order(self, plan_id: int | str, *, user: str, rows: int | None = None, operator: bool = False) -> int:
        """Queue a rehearsal of the plan's exact bytes; its id. Its author and its runners may ask: it
        changes nothing but a scratch database, yet copies the target on the target's server."""
        if rows is not None and not 1 <= rows <= MAX_ROWS:
            raise UserError(f"rows: from 1 to {MAX_ROWS:,} synthetic rows per table, not {rows:,}")
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            state = PlanState(plan.state)
            if state not in REHEARSABLE:
                raise InvalidState(f"plan #{plan.id} is {state.label}; only a plan not yet run is rehearsed")
            if not plan.segments or plan.segments.get("problem"):
                raise InvalidState(f"plan #{plan.id} cannot be run, so not rehearsed either; plan it again")
            env = environment(self.config, plan.environment)
            if not env.dsn():
                raise UserError(
                    f"{env.name} has no target database to copy: set {env.dsn_env or 'its dsn_env'}"
                )
            verify_bytes(plan)
            roles, author = self.runner.runner_roles(plan), plan.author
        if not (operator or user == author or any(self.roles.holds(user, role) for role in roles)):
            who = ", ".join(display_name(r) for r in roles)
            raise Forbidden(f"only the author of plan #{plan_id} or its runners ({who}) may rehearse it")
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            record = RehearsalRecord(
                plan_id=plan.id,
                sha256=plan.sha256,
                rollback_sha256=plan.rollback_sha256,
                state="queued",
                operator=user,
                rows=rows or env.rehearsal.rows,
                report={},
            )
            session.add(record)
            number = plan.id  # a failed flush expires the plan: its id is read before
            try:
                session.flush()
            except IntegrityError:  # one is queued or running already (asked a moment ago, say)
                raise InvalidState(
                    f"a rehearsal of plan #{number} is under way already; its progress is in the thread"
                ) from None
            _event(session, record, "queued", actor=user)
            self.outbox.rehearsal(session, plan, record.id)
            return record.id

    def run(self, rehearsal_id: int, echo: Callable[[str], None] | None = None) -> RehearsalRecord:
        """Carry a queued rehearsal out; its result is stored, told, and may approve the plan. ``echo``
        hears its progress too (the CLI's terminal)."""
        with self.db.session() as session:
            record = session.get(RehearsalRecord, rehearsal_id)
            if record is None:
                raise UserError(f"no rehearsal #{rehearsal_id}")
            if record.state != "queued":
                raise InvalidState(f"rehearsal #{rehearsal_id} is {record.state}; it runs once")
            record.state, record.started_at, record.runner = "running", self.clock(), RUNNER_ID
            plan = get_plan(session, record.plan_id)
            facts = (plan.environment, plan.file_name, plan.analysis, plan.rollback_analysis, plan.segments)
            commit = plan.source_commit
            _event(session, record, "started")
            self.outbox.rehearsal(session, plan, record.id)
        env_name, file_name, analysis, rollback_analysis, segments = facts
        assert segments is not None  # a plan without them is refused a rehearsal (request)
        env = environment(self.config, env_name)
        policy = self.config.policy.execution

        def progress(message: str) -> None:
            self._progress(rehearsal_id, message)
            if echo:
                echo(redact(message))

        report: RehearsalReport | None = None
        try:
            with self.db.session() as session:
                verify_bytes(get_plan(session, record.plan_id))
            target = env.dsn()
            if not target:
                raise UserError(f"{env.name} has no target database to copy")
            with scratch_database(
                env.rehearsal.admin_dsn() or target,
                target,
                env.rehearsal.strategies,
                schema_only=env.rehearsal.schema_only,
                migrations=_earlier(at_commit(env, commit).directory, file_name),
                pg_dump=self.config.tools.pg_dump,
                pg_restore=self.config.tools.pg_restore,
                timeout=policy.backup_timeout_seconds,
                progress=progress,
            ) as scratch:
                self._made(rehearsal_id, scratch.name)
                report = rehearse(
                    scratch.dsn,
                    from_data(segments["forward"]),
                    from_data(segments["rollback"]),
                    analysis=Analysis.from_dict(analysis),
                    rollback_analysis=Analysis.from_dict(rollback_analysis) if rollback_analysis else None,
                    lock_timeout=policy.lock_timeout,
                    statement_timeout=policy.statement_timeout,
                    rows=record.rows,
                    max_duration_seconds=policy.max_duration_seconds,
                    scratch=scratch,
                    progress=progress,
                )
        except (StepFailed, UserError) as err:
            if report is None:
                return self._finish(rehearsal_id, None, str(err))
            # the rehearsal ran; only its scratch database could not be dropped: its verdict stands
            return self._finish(rehearsal_id, report, None, leftover=str(err))
        except Exception as err:  # a job must not leave its rehearsal "running" for ever
            log.exception("rehearsal #%s failed", rehearsal_id)
            return self._finish(rehearsal_id, None, f"internal error: {type(err).__name__}: {err}")
        return self._finish(rehearsal_id, report, None)

    def _made(self, rehearsal_id: int, name: str) -> None:
        """Its scratch database, stored before anything runs on it: a bot killed now leaves its name."""
        with self.db.session() as session:
            record = session.get(RehearsalRecord, rehearsal_id)
            assert record is not None
            record.scratch_name = name

    def _progress(self, rehearsal_id: int, message: str) -> None:
        """What it is doing now, on its line in the thread (a burst of these costs Slack one update)."""
        with self.db.session() as session:
            record = session.get(RehearsalRecord, rehearsal_id)
            assert record is not None
            record.progress = redact(message)
            self.outbox.rehearsal(session, get_plan(session, record.plan_id), rehearsal_id)

    def _finish(
        self,
        rehearsal_id: int,
        report: RehearsalReport | None,
        error: str | None,
        *,
        leftover: str | None = None,
    ) -> RehearsalRecord:
        """Store and tell how it ended; ``leftover``: why its scratch database is still there."""
        state = "passed" if report is not None and report.passed else "failed"
        with self.db.session() as session:
            record = session.get(RehearsalRecord, rehearsal_id)
            assert record is not None
            record.state, record.finished_at = state, self.clock()
            record.report = report.to_dict() if report else {}
            record.error = redact(error) if error else None
            if leftover is None:
                record.scratch_name = None
            session.flush()
            plan = get_plan(session, record.plan_id)
            session.refresh(plan)  # its rehearsals, with this one
            _event(session, record, state, record.error, report=record.report)
            self.outbox.rehearsal(session, plan, record.id)
            self.outbox.thread(session, plan, "\n".join(report_lines(record)))
            if leftover is not None:
                self.outbox.thread(session, plan, f"⚠️ {quote(redact(leftover))}: drop it by hand.")
            self._open_gate(session, plan)
            self.outbox.redraw(session, plan)
            return record

    def _open_gate(self, session: Session, plan: PlanRecord) -> None:
        """The rehearsal was the last thing the plan's approvals waited for: it is approved now."""
        status = approval_status(self.config, plan)
        if (
            PlanState(plan.state) is not S.AWAITING_APPROVAL
            or not status.complete
            or status.rehearsal is None
        ):
            return
        transition(
            session,
            plan,
            S.APPROVED,
            actor="bot",
            kind="approved",
            message=f"approved: every sign-off is in and rehearsal #{status.rehearsal.id} passed",
            data={"sha256": plan.sha256, "rollback_sha256": plan.rollback_sha256},
        )
        self.outbox.thread(
            session,
            plan,
            f"🎉 Plan #{plan.id} is *approved*: every sign-off is in and its "
            f"rehearsal passed. {mention(plan.author)}",
        )

    def queued(self) -> list[int]:
        with self.db.session() as session:
            return list(session.scalars(select(RehearsalRecord.id).where(RehearsalRecord.state == "queued")))

    def recover(self) -> list[int]:
        """Rehearsals a dead bot left running: interrupted, never run again by themselves, and the scratch
        database each had made dropped (or named in the thread, when it cannot be). One a live process of
        this host still runs is left alone."""
        with self.db.session() as session:
            running = session.scalars(select(RehearsalRecord).where(RehearsalRecord.state == "running")).all()
            found = [
                (r.id, get_plan(session, r.plan_id).environment, r.scratch_name)
                for r in running
                if not runner_alive(r.runner)  # the CLI's, say, still going
            ]
        left = {rid: self._drop_left(env, name) for rid, env, name in found}  # outside any transaction
        with self.db.session() as session:
            for rehearsal_id, why in left.items():
                record = session.get(RehearsalRecord, rehearsal_id)
                assert record is not None
                record.state, record.error = "interrupted", "the bot stopped"
                record.finished_at = self.clock()
                record.scratch_name = record.scratch_name if why else None
                plan = get_plan(session, record.plan_id)
                _event(session, record, "interrupted", "the bot stopped")
                self.outbox.rehearsal(session, plan, record.id)
                text = f"⚠️ Rehearsal #{record.id} was interrupted by a restart; `/migrate rehearse {plan.id}`"
                text += " starts another." + (f" {quote(why)}: drop it by hand." if why else "")
                self.outbox.thread(session, plan, text)
        return list(left)

    def _drop_left(self, env_name: str, name: str | None) -> str | None:
        """Drop a scratch database a dead rehearsal left; why not, when it cannot be."""
        if name is None:
            return None
        env = environment(self.config, env_name)
        admin = env.rehearsal.admin_dsn() or env.dsn()
        if not admin:
            return f"scratch database {name} is left: {env.name} has no DSN here to drop it with"
        try:
            drop_scratch(admin, name)
        except StepFailed as err:
            return err.message
        return None


def _event(
    session: Session,
    record: RehearsalRecord,
    what: str,
    why: str | None = None,
    *,
    actor: str = "bot",
    **data: Any,
) -> None:
    """The rehearsal's ``what`` (queued, started, passed …) on the plan's timeline."""
    timeline.record(
        session,
        plan_id=record.plan_id,
        actor=actor,
        kind=f"rehearsal_{what}",
        message=f"rehearsal #{record.id} {what}" + (f": {why}" if why else ""),
        data={"rehearsal": record.id, **data},
    )


def _earlier(migrations_dir: Path, file_name: str) -> list[str]:
    """The migrations before this one, in order: what ``replay`` applies to an empty database."""
    files = sorted(p for p in migrations_dir.glob("*.sql") if not p.name.endswith(ROLLBACK_SUFFIX))
    return [p.read_text(encoding="utf-8") for p in files if p.name < Path(file_name).name]
