"""``/migrate plan``: analyse, store, and owe the announcement, in one transaction whichever front end asked.

Planning a file that has an open plan is where approvals could be bent, so the rules live here: the same
bytes create nothing (the open plan is the answer); changed bytes replace the open plan only when its
author or one of its approvers plans them, and the old thread says who replaced it and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import news
from bot.approvals import approval_status
from bot.deps import Service
from bot.drafting import PlanDraft, draft_plan, environment
from bot.errors import Forbidden
from bot.git_source import checkout
from bot.idempotency import claim
from bot.markup import mention
from bot.plans import create_plan, open_plans_of, supersede
from bot.rules import PEER_ROLE, display_name
from bot.states import PlanState
from bot.targets import open_catalog
from storage.models import PlanRecord


@dataclass(frozen=True)
class Submission:
    """What planning did: a new plan, the open plan of the same bytes (``unchanged``), or nothing at all
    because the same request was handled already (``duplicate``, ``plan`` is None)."""

    plan: PlanRecord | None
    unchanged: bool = False
    duplicate: bool = False
    superseded: tuple[int, ...] = ()
    owed: tuple[int, ...] = ()  # outbox rows announcing the new plan


class Planner(Service):
    def submit(
        self,
        *,
        env_name: str | None,
        file_arg: str,
        author: str,
        typed_in: str | None,
        request_key: str | None = None,
        ref: str | None = None,
    ) -> Submission:
        """Plan ``file_arg`` for an environment (at ``ref`` when its migrations come from git: a branch,
        a tag or a commit; its configured branch's newest commit by default); bad input raises UserError
        and stores nothing.

        The plan goes to the environment's channel, else to ``typed_in`` (where it was asked for).
        """
        env = environment(self.config, env_name)
        source = checkout(env, ref)
        with open_catalog(env) as catalog:
            draft = draft_plan(self.config, env.name, file_arg, catalog=catalog, checkout=source)
        with self.db.session() as session:
            open_plans = open_plans_of(session, draft.environment, draft.migration.name)
            same = _same_bytes(open_plans, draft)
            approvers = {old.id: self._approver_roles(old) for old in open_plans}
        if same is not None:
            return Submission(same, unchanged=True)
        for old in open_plans:  # role lookups may ask Slack: outside the write transaction
            self._check_may_replace(old, approvers[old.id], author)
        with self.db.session() as session:
            if not claim(session, request_key):
                return Submission(None, duplicate=True)
            open_plans = open_plans_of(session, draft.environment, draft.migration.name)
            same = _same_bytes(open_plans, draft)  # planned meanwhile by a concurrent request
            if same is not None:
                return Submission(same, unchanged=True)
            plan = create_plan(
                session, draft, author=author, channel_id=env.channel or typed_in, now=self.clock()
            )
            owed = self.outbox.announce_plan(session, plan, typed_in=typed_in)
            for old in open_plans:
                supersede(session, old, plan)
                self.outbox.redraw(session, old)
                self.outbox.thread(session, old, news.superseded(old, plan))
            return Submission(plan, superseded=tuple(o.id for o in open_plans), owed=tuple(owed))

    def _approver_roles(self, plan: PlanRecord) -> list[str]:
        slots = approval_status(self.config, plan).slots
        return [s.role for s in slots if s.kind == "approval" and s.role != PEER_ROLE]

    def _check_may_replace(self, old: PlanRecord, roles: list[str], user: str) -> None:
        """Only the author or one of the approvers of an open plan may void its sign-offs."""
        if user == old.author:
            return
        if not roles or any(self.roles.holds(user, role) for role in roles):
            return
        who = " or ".join(display_name(r) for r in roles)
        raise Forbidden(
            f"plan #{old.id} of `{old.file_name}` is {PlanState(old.state).label}; only its author "
            f"{mention(old.author)} or its {who} may replace it with a changed file"
        )


def _same_bytes(plans: list[PlanRecord], draft: PlanDraft) -> PlanRecord | None:
    for plan in plans:
        if plan.sha256 == draft.migration.sha256 and plan.rollback_sha256 == draft.rollback_sha256:
            return plan
    return None
