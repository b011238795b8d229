"""Change freezes: nothing runs on a frozen environment until someone lifts the freeze.

Rollbacks and restores are not runs: a freeze never stands in the way back. Freezes are kept once lifted,
as the environment's history (the timeline is a plan's). What the environment's channel is owed is
returned for the caller to post, since the outbox speaks to plans' threads only; plans scheduled there
are told in their threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.deps import Service
from bot.errors import Forbidden, InvalidState, UserError
from bot.execution.windows import utc_label
from bot.markup import mention, quote, quote_message
from bot.plans import environment
from bot.rules import display_name
from storage.models import SCHEDULE_WAITING, FreezeRecord, PlanRecord, ScheduleRecord, aware


@dataclass(frozen=True)
class ChannelMessage:
    """Text (bot markup) owed to a channel rather than a plan's thread; ``channel`` None: the environment
    names none, so the caller answers where the command was typed."""

    channel: str | None
    text: str


@dataclass(frozen=True)
class FreezeChange:
    record: FreezeRecord
    announcement: ChannelMessage


def since(freeze: FreezeRecord) -> str:
    """``since 2026-11-26 10:02 UTC by <@U…>: <reason>`` (plain text: a UserError's, quoted when shown)."""
    return f"since {utc_label(aware(freeze.at))} by {mention(freeze.by)}: {freeze.reason}"


class Freezes(Service):
    def freeze(self, env_name: str, *, user: str, reason: str, operator: bool = False) -> FreezeChange:
        """Freeze an environment; ``operator``: the CLI, whose named operator holds no role."""
        env = environment(self.config, env_name)
        reason = reason.strip()
        if not reason:
            raise UserError(f"say why {env.name} is frozen: `/migrate freeze {env.name} <reason>`")
        self._check_freezer(env.name, user, operator=operator)
        with self.db.session() as session:
            frozen = self.current(session, env.name)
            if frozen is not None:
                raise InvalidState(f"{env.name} is already frozen, {since(frozen)}")
            record = FreezeRecord(environment=env.name, reason=reason, by=user, at=self.clock())
            session.add(record)
            try:
                session.flush()
            except IntegrityError:  # someone froze it in the same moment
                raise InvalidState(f"{env.name} was frozen a moment ago by someone else") from None
            self._tell_scheduled(
                session, env.name, f"🧊 {env.name} is frozen: this run starts only if it is unfrozen by then."
            )
            text = (
                f"🧊 *{env.name} is frozen* by {mention(user)}: {quote(reason)}\nNothing runs there until "
                f"`/migrate unfreeze {env.name}`; rollbacks and restores still can."
            )
            return self._announce(session, record, ChannelMessage(env.channel, text))

    def unfreeze(self, env_name: str, *, user: str, operator: bool = False) -> FreezeChange:
        env = environment(self.config, env_name)
        self._check_freezer(env.name, user, operator=operator)
        with self.db.session() as session:
            record = self.current(session, env.name)
            if record is None:
                raise InvalidState(f"{env.name} is not frozen")
            record.lifted_by, record.lifted_at = user, self.clock()
            self._tell_scheduled(
                session, env.name, f"🌤️ {env.name} is unfrozen: this run starts as scheduled."
            )
            text = (
                f"🌤️ *{env.name} is unfrozen* by {mention(user)}; it was frozen "
                f"{quote_message(since(record))}\nApproved plans run there again."
            )
            return self._announce(session, record, ChannelMessage(env.channel, text))

    def _announce(self, session: Session, record: FreezeRecord, message: ChannelMessage) -> FreezeChange:
        """Owe the environment's channel the news with the change itself; without a channel, the caller
        says it where it was asked."""
        if message.channel:
            self.outbox.channel(session, message.channel, message.text)
        return FreezeChange(record, message)

    @staticmethod
    def current(session: Session, env_name: str) -> FreezeRecord | None:
        """The freeze in force on the environment, if any."""
        return session.scalars(
            select(FreezeRecord).where(FreezeRecord.environment == env_name, FreezeRecord.lifted_at.is_(None))
        ).first()

    @staticmethod
    def check_not_frozen(session: Session, env_name: str) -> None:
        """Refuse a run on a frozen environment, saying since when, by whom, why, and how to lift it."""
        frozen = Freezes.current(session, env_name)
        if frozen is not None:
            raise InvalidState(
                f"{env_name} is frozen {since(frozen)}; nothing runs there until "
                f"`/migrate unfreeze {env_name}`"
            )

    def _check_freezer(self, env_name: str, user: str, *, operator: bool) -> None:
        """Role lookups may ask Slack: outside any transaction."""
        freezers = self.config.policy.execution.freezers
        if operator or any(self.roles.holds(user, role) for role in freezers):
            return
        who = " or ".join(display_name(r) for r in freezers)
        raise Forbidden(f"only {who} may freeze or unfreeze {env_name}")

    def _tell_scheduled(self, session: Session, env_name: str, text: str) -> None:
        """Each plan with a run scheduled on the environment hears of the change in its thread."""
        waiting = session.scalars(
            select(PlanRecord)
            .join(ScheduleRecord, ScheduleRecord.plan_id == PlanRecord.id)
            .where(PlanRecord.environment == env_name, ScheduleRecord.state == SCHEDULE_WAITING)
        )
        for plan in waiting:
            self.outbox.thread(session, plan, text)
