"""Incidents: what people must answer, who is paged for it and when, until someone acts.

The guide's Incident Response and Contact and Escalation, as defaults of the policy: P0 pages every level
of the chain at once and rolls back; P1 and P2 page the chain's first level (on-call) at once, the next
ones when nobody acknowledged after their delay (Technical Lead after 15 minutes, CTO after 1 hour), and
again every few minutes meanwhile; P3 pages nobody (its response is the next business day). The
severity's response time and rollback-decision time are deadlines: one that passes with nobody having
acknowledged, or decided, asks the level paged last and escalates to the next.

Every change (opened, raised, paged, acknowledged, resolved) is committed with the messages it owes, so a
leader that dies between two pings and the one that takes over never page twice, and never miss one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import timeline
from bot.deps import Deps, Service
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.runner import Order, Runner
from bot.markup import mention, mention_group, quote
from bot.monitor.rules import ORDER
from bot.notifier import Choice
from bot.plans import environment, get_plan
from bot.rules import display_name
from bot.states import OPEN_STATES, PlanState
from storage.models import INCIDENT_UNRESOLVED, IncidentRecord, PageRecord, PlanRecord, aware, passed

# Who the bot is on the timeline when it acts by itself.
BOT = "migrate-bot"
# Plans an incident can be about: something of them ran.
RAN = (
    frozenset(PlanState)
    - OPEN_STATES
    - {
        PlanState.REJECTED,
        PlanState.CANCELLED,
        PlanState.SUPERSEDED,
        PlanState.EXPIRED,
    }
)
# PagerDuty's severities for the guide's.
PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info", None: "info"}


class IncidentState(StrEnum):
    OPEN = "open"  # nobody acknowledged it: the chain goes on
    ACKNOWLEDGED = "acknowledged"  # someone is on it: no more pages, but its decision is still due
    RESOLVED = "resolved"


class IncidentKind(StrEnum):
    BREACH = "breach"  # the window's rules found it
    INCONCLUSIVE = "inconclusive"  # the window cannot tell: continue, or roll back?
    MANUAL = "manual"  # someone opened it (a broken feature the metrics miss)


# What a page offers, by kind: a question (the window cannot tell) is answered by Continue.
CHOICES = {
    IncidentKind.INCONCLUSIVE: (Choice.CONTINUE, Choice.ROLL_BACK),
    IncidentKind.BREACH: (Choice.ACKNOWLEDGE, Choice.ROLL_BACK, Choice.RESOLVE),
    IncidentKind.MANUAL: (Choice.ACKNOWLEDGE, Choice.ROLL_BACK, Choice.RESOLVE),
}

RollBack = Callable[[Order], None]


class Incidents(Service):
    """``roll_back`` carries out a rollback order the way this process can (``Services.roll_back``: a
    persistent job under ``serve``, at once in the CLI and the demo); set once the services are wired."""

    def __init__(self, deps: Deps, runner: Runner) -> None:
        super().__init__(deps)
        self.runner = runner
        self.roll_back: RollBack = _unwired

    # --- opening --------------------------------------------------------------------------------------

    def open(
        self,
        plan_id: int | str,
        *,
        kind: IncidentKind,
        severity: str | None,
        reason: str,
        actor: str = BOT,
        roll_back: bool | None = None,
        operator: bool = False,
    ) -> int:
        """Open an incident on the plan, or raise the severity of the one unresolved (one per plan), and
        page as its severity says. ``roll_back``: whether it rolls back by itself (default: the
        severity's policy, P0's "automatic"). ``operator``: a CLI operator, whose roles are not checked.
        Its id."""
        if severity is not None and severity not in ORDER:
            raise UserError(f"severity: one of {', '.join(ORDER)}, not `{quote(severity[:10])}`")
        if not reason.strip():
            raise UserError("say what is wrong")
        chain = self._chain()
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            if PlanState(plan.state) not in RAN:
                raise InvalidState(
                    f"plan #{plan.id} is {PlanState(plan.state).label}; an incident is about a plan that ran"
                )
            if actor != BOT and not operator:
                self.check_may_answer(plan, actor)
            plan_number = plan.id
            current = self.unresolved(session, plan.id)
            if current is not None:
                incident_id = self._raise(session, plan, current, severity, reason, actor, chain)
            else:
                incident_id = self._create(session, plan, kind, severity, reason, actor, chain)
        automatic = roll_back if roll_back is not None else self._automatic(severity)
        if automatic:
            self.order_rollback(plan_number, user=BOT, reason=f"incident #{incident_id}: {reason}")
        return incident_id

    def _create(
        self,
        session: Session,
        plan: PlanRecord,
        kind: IncidentKind,
        severity: str | None,
        reason: str,
        actor: str,
        chain: list[tuple[str, list[str], list[str]]],
    ) -> int:
        now = self.clock()
        incident = IncidentRecord(
            plan_id=plan.id,
            kind=kind.value,
            severity=severity,
            state=IncidentState.OPEN.value,
            reason=reason,
            opened_by=actor,
            level=0,
            decision_asked=False,
            created_at=now,
        )
        self._deadlines(incident, now)
        session.add(incident)
        number = plan.id
        try:
            session.flush()
        except IntegrityError:  # opened a moment ago by another sample or person: that one stands
            raise InvalidState(f"plan #{number} has an incident open already") from None
        what = f"{severity} incident" if severity else "Question"
        timeline.record(
            session,
            plan_id=plan.id,
            actor=actor,
            kind="incident_opened",
            message=f"{what} #{incident.id} opened: {reason}",
            data={"incident": incident.id, "kind": kind.value, "severity": severity},
        )
        levels = self._levels_to_page(incident, chain)
        self._page(session, plan, incident, chain, levels, why="opened")
        if not levels:
            self.outbox.thread(
                session,
                plan,
                f"📝 {severity} incident #{incident.id}: {quote(reason)}. Nobody is paged: its response is "
                "the next business day.",
            )
        self.outbox.redraw(session, plan)
        return incident.id

    def _raise(
        self,
        session: Session,
        plan: PlanRecord,
        incident: IncidentRecord,
        severity: str | None,
        reason: str,
        actor: str,
        chain: list[tuple[str, list[str], list[str]]],
    ) -> int:
        """A worse finding on an incident already open: its severity, deadlines and pages follow."""
        if severity is None or (
            incident.severity and ORDER.index(severity) >= ORDER.index(incident.severity)
        ):
            return incident.id  # no worse than what is open: it is on the timeline through the window
        before = incident.severity
        incident.severity, incident.reason = severity, f"{incident.reason}; then {reason}"
        incident.state = IncidentState.OPEN.value  # worse news wants an answer again
        self._deadlines(incident, self.clock())
        timeline.record(
            session,
            plan_id=plan.id,
            actor=actor,
            kind="incident_raised",
            message=f"incident #{incident.id} raised from {before or 'a question'} to {severity}: {reason}",
            data={"incident": incident.id, "severity": severity, "was": before},
        )
        self._page(session, plan, incident, chain, self._levels_to_page(incident, chain), why="raised")
        return incident.id

    def _deadlines(self, incident: IncidentRecord, now: datetime) -> None:
        severity = self.config.policy.severities.get(incident.severity) if incident.severity else None
        response = severity.response_minutes if severity else None
        decision = severity.rollback_after_minutes if severity else None
        incident.response_due_at = now + timedelta(minutes=response) if response else None
        incident.decision_due_at = now + timedelta(minutes=decision) if decision else None
        incident.decision_asked = False

    def _levels_to_page(self, incident: IncidentRecord, chain: Sequence[object]) -> list[int]:
        """P0: every level at once; P3: nobody; otherwise the level it is at."""
        if incident.severity == "P0":
            return list(range(len(chain)))
        if incident.severity == "P3":
            return []
        return [incident.level]

    def _automatic(self, severity: str | None) -> bool:
        return severity is not None and self.config.policy.severities[severity].rollback == "automatic"

    # --- escalation ------------------------------------------------------------------------------------

    def due(self) -> list[int]:
        """Incidents with a page or a decision due now."""
        now = self.clock()
        with self.db.reading() as session:
            query = select(IncidentRecord.id).where(
                IncidentRecord.state.in_(INCIDENT_UNRESOLVED),
                or_(
                    IncidentRecord.next_ping_at <= now,
                    IncidentRecord.response_due_at <= now,
                    (IncidentRecord.decision_due_at <= now) & ~IncidentRecord.decision_asked,
                ),
            )
            return list(session.scalars(query))

    def escalate(self, incident_id: int) -> list[str]:
        """Page whoever is due now, once: the next levels whose delay passed, a repeat, or the level after
        a deadline nobody met. What was done, in words (for the timeline and tests)."""
        chain = self._chain()
        done: list[str] = []
        with self.db.session() as session:
            incident = session.get(IncidentRecord, incident_id)
            if incident is None or incident.state not in INCIDENT_UNRESOLVED:
                return done
            plan = get_plan(session, incident.plan_id)
            now, opened = self.clock(), aware(incident.paging_since or incident.created_at)
            top = len(chain) - 1
            if incident.state == IncidentState.OPEN and passed(incident.response_due_at, now):
                incident.response_due_at = None  # once: the next level is paged now
                if incident.level < top:
                    incident.level += 1
                    self._page(session, plan, incident, chain, [incident.level], why="response_due")
                    done.append(f"response time passed: level {incident.level} paged")
            if passed(incident.decision_due_at, now) and not incident.decision_asked:
                incident.decision_asked = True
                levels = [incident.level] + ([incident.level + 1] if incident.level < top else [])
                incident.level = levels[-1]
                self._page(session, plan, incident, chain, levels, why="decision_due")
                done.append(f"rollback decision due: levels {levels} asked")
            if incident.state == IncidentState.OPEN and passed(incident.next_ping_at, now):
                reached = max(
                    [
                        i
                        for i, level in enumerate(self.config.policy.escalation.chain)
                        if opened + timedelta(minutes=level.after_minutes) <= now
                    ]
                    or [0]
                )
                if reached > incident.level:
                    levels = list(range(incident.level + 1, reached + 1))
                    incident.level = reached
                    self._page(session, plan, incident, chain, levels, why="escalated")
                    done.append(f"escalated to levels {levels}")
                elif not done:
                    self._page(session, plan, incident, chain, [incident.level], why="repeat")
                    done.append(f"level {incident.level} paged again")
            incident.next_ping_at = self._next_ping(incident, now)
        return done

    def _next_ping(self, incident: IncidentRecord, now: datetime) -> datetime | None:
        """While nobody acknowledged: the next level's time or a repeat, whichever comes first."""
        if incident.state != IncidentState.OPEN or incident.severity == "P3":
            return None
        policy = self.config.policy.escalation
        times = [now + timedelta(minutes=policy.repeat_ping_minutes)]
        if incident.level + 1 < len(policy.chain):
            after = policy.chain[incident.level + 1].after_minutes
            times.append(aware(incident.paging_since or now) + timedelta(minutes=after))
        return min(times)

    def _page(
        self,
        session: Session,
        plan: PlanRecord,
        incident: IncidentRecord,
        chain: list[tuple[str, list[str], list[str]]],
        levels: Sequence[int],
        *,
        why: str,
    ) -> None:
        """Page ``levels`` of the chain: stored, a mention in the thread, a direct message with the
        incident's choices to each person, a PagerDuty trigger when the environment has a key."""
        if not levels:
            return
        now = self.clock()
        incident.paging_since = incident.paging_since or now
        env = environment(self.config, plan.environment)
        choices = [(choice, str(incident.id)) for choice in CHOICES[IncidentKind(incident.kind)]]
        named: list[str] = []
        for level in levels:
            role, users, groups = chain[level]
            session.add(
                PageRecord(incident_id=incident.id, level=level, role=role, users=users, why=why, at=now)
            )
            timeline.record(
                session,
                plan_id=plan.id,
                actor=BOT,
                kind="page",
                message=f"incident #{incident.id}: {display_name(role)} paged ({why.replace('_', ' ')})",
                data={"incident": incident.id, "level": level, "role": role, "users": users, "why": why},
            )
            text = _page_text(plan, incident, role, why)
            for user in users:
                self.outbox.choices(session, plan, text, choices, to=user)
            who = [mention(u) for u in users] + [mention_group(g) for g in groups]
            named.append(f"{display_name(role)} ({', '.join(who) or 'nobody holds this role'})")
            key_env = env.monitor.pagerduty_routing_key_env
            if key_env:
                self.outbox.pagerduty(
                    session,
                    plan,
                    _pagerduty_event(plan, incident, role, level),
                    key_env=key_env,
                    url=env.monitor.pagerduty_url,
                )
        incident.next_ping_at = self._next_ping(incident, now)
        self.outbox.choices(
            session,
            plan,
            f"{_headline(incident)}: {quote(incident.reason)}. {_WHY[why]}: " + "; ".join(named),
            choices,
        )

    # --- answers ---------------------------------------------------------------------------------------

    def acknowledge(self, incident_id: int | str, *, user: str, operator: bool = False) -> IncidentRecord:
        """Someone is on it: the chain stops; the rollback decision stays due."""
        with self.db.session() as session:
            incident, plan = self._answerable(session, incident_id, user, operator)
            if incident.state != IncidentState.OPEN:
                raise InvalidState(f"incident #{incident.id} is {incident.state} already")
            incident.state, incident.acknowledged_by = IncidentState.ACKNOWLEDGED.value, user
            incident.acknowledged_at, incident.next_ping_at = self.clock(), None
            incident.response_due_at = None  # answered in time
            self._told(session, plan, incident, user, "acknowledged", f"✋ {mention(user)} acknowledged")
            return incident

    def resolve(
        self, incident_id: int | str, *, user: str, resolution: str, operator: bool = False
    ) -> IncidentRecord:
        """Closed: nothing more is paged or due. A monitored plan whose window ended completes."""
        with self.db.session() as session:
            incident, plan = self._answerable(session, incident_id, user, operator)
            incident.state, incident.resolved_by, incident.resolution = (
                IncidentState.RESOLVED.value,
                user,
                resolution,
            )
            incident.resolved_at, incident.next_ping_at = self.clock(), None
            incident.response_due_at = incident.decision_due_at = None
            self._told(
                session,
                plan,
                incident,
                user,
                "resolved",
                f"✅ {mention(user)} resolved it: {quote(resolution)}",
            )
            return incident

    def roll_back_for(self, incident_id: int | str, *, user: str, operator: bool = False) -> IncidentRecord:
        """The answer is a rollback: ordered (who may roll back is the runner's rule) and the incident
        resolved by it."""
        with self.db.session() as session:
            incident, plan = self._answerable(session, incident_id, user, operator)
            plan_id, number = plan.id, incident.id
        self.order_rollback(plan_id, user=user, reason=f"incident #{number}", operator=operator)
        return self.resolve(number, user=user, resolution="rolled back", operator=operator)

    def order_rollback(self, plan_id: int, *, user: str, reason: str, operator: bool = True) -> None:
        """Stop a run at its current step and roll back what it applied (the rollback waits for the step
        that is running, if any). Who may is asked first: a refusal must not stop the run."""
        order = self.runner.order_rollback(
            plan_id, user=user, reason=reason, operator=operator or user == BOT
        )
        with self.db.session() as session:
            plan = get_plan(session, plan_id)
            if PlanState(plan.state) is PlanState.RUNNING:
                plan.abort_requested = True
        self.roll_back(order)

    def unresolved(self, session: Session, plan_id: int) -> IncidentRecord | None:
        return session.scalars(select(IncidentRecord).where(unresolved_on(plan_id))).first()

    def _answerable(
        self, session: Session, incident_id: int | str, user: str, operator: bool
    ) -> tuple[IncidentRecord, PlanRecord]:
        number = str(incident_id).lstrip("#")
        incident = session.get(IncidentRecord, int(number)) if number.isdigit() else None
        if incident is None:
            raise UserError(f"no incident #{quote(str(incident_id)[:20])}")
        if incident.state == IncidentState.RESOLVED:
            raise InvalidState(f"incident #{incident.id} is resolved already")
        plan = get_plan(session, incident.plan_id)
        if not operator:
            self.check_may_answer(plan, user)
        return incident, plan

    def check_may_answer(self, plan: PlanRecord, user: str) -> None:
        """The escalation chain's roles and the plan's runners may open, acknowledge and resolve."""
        roles = [level.role for level in self.config.policy.escalation.chain] + self.runner.runner_roles(plan)
        roles = list(dict.fromkeys(roles))
        if not any(self.roles.holds(user, role) for role in roles):
            who = ", ".join(display_name(r) for r in roles)
            raise Forbidden(f"only {who} may answer incidents of plan #{plan.id}")

    def _told(
        self, session: Session, plan: PlanRecord, incident: IncidentRecord, user: str, what: str, text: str
    ) -> None:
        timeline.record(
            session,
            plan_id=plan.id,
            actor=user,
            kind=f"incident_{what}",
            message=f"incident #{incident.id} {what}",
            data={"incident": incident.id, "resolution": incident.resolution},
        )
        self.outbox.thread(session, plan, f"{text} incident #{incident.id}.")
        self.outbox.redraw(session, plan)

    def _chain(self) -> list[tuple[str, list[str], list[str]]]:
        """Each level's role, the people it pages and its groups: read before any transaction (a group's
        members may be asked of Slack)."""
        return [(level.role, *self.roles.people(level.role)) for level in self.config.policy.escalation.chain]


def _unwired(order: Order) -> None:
    raise RuntimeError("Incidents.roll_back is not wired (see bot.app.build_services)")


def unresolved_on(plan_id: int | SQLColumnExpression[int]) -> ColumnElement[bool]:
    """An incident about the plan ``plan_id`` (a value, or a column to correlate with) that is not over."""
    return and_(IncidentRecord.plan_id == plan_id, IncidentRecord.state.in_(INCIDENT_UNRESOLVED))


_WHY = {
    "opened": "Paging",
    "raised": "Worse: paging",
    "escalated": "Nobody acknowledged: escalating to",
    "repeat": "Still nobody acknowledged: paging again",
    "response_due": "The response time passed: escalating to",
    "decision_due": "The rollback decision is due: asking",
}


def _headline(incident: IncidentRecord) -> str:
    if incident.severity is None:
        return f"❓ Incident #{incident.id}"
    icon = "🆘" if incident.severity == "P0" else "🚨"
    return f"{icon} *{incident.severity} incident #{incident.id}*"


def _page_text(plan: PlanRecord, incident: IncidentRecord, role: str, why: str) -> str:
    ask = (
        "Continue watching, or roll back?"
        if incident.kind == IncidentKind.INCONCLUSIVE
        else "Acknowledge, roll back, or resolve."
    )
    return (
        f"{_headline(incident)} on plan #{plan.id} (`{quote(plan.file_name)}`, {plan.environment}): "
        f"{quote(incident.reason)}. You are paged as {display_name(role)} ({_WHY[why].lower()}). {ask}"
    )


def _pagerduty_event(plan: PlanRecord, incident: IncidentRecord, role: str, level: int) -> dict[str, object]:
    return {
        "event_action": "trigger",
        "dedup_key": f"migrate-bot-plan-{plan.id}-incident-{incident.id}-level-{level}",
        "payload": {
            "summary": f"{incident.severity or 'Question'} on plan #{plan.id} ({plan.environment}): "
            f"{incident.reason}"[:1024],
            "severity": PAGERDUTY_SEVERITY[incident.severity],
            "source": f"migrate-bot {plan.environment}",
            "custom_details": {"plan": plan.id, "file": plan.file_name, "role": role, "level": level},
        },
    }
