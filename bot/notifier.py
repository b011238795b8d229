"""The port through which the domain tells people things; Slack and the console implement it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.plans import PlanDraft
from bot.policy import Policy
from bot.report import PlanMeta, approval_lines, render_text


@dataclass(frozen=True)
class MessageRef:
    """Where an announcement landed, so later news can go to its thread."""

    channel: str
    ts: str


@dataclass(frozen=True)
class PlanView:
    """What a front end needs to show a plan."""

    draft: PlanDraft
    meta: PlanMeta | None
    policy: Policy


class Notifier(Protocol):
    def post_plan(self, view: PlanView, *, channel: str | None) -> MessageRef | None:
        """Announce a plan; returns where, so its thread can be used later."""
        ...

    def post_plan_details(self, view: PlanView, ref: MessageRef) -> None:
        """The full SQL, rollback and checklist, in the plan's thread."""
        ...

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        """Add news to a plan's thread."""
        ...

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        """Redraw the plan's message in place: state, sign-offs, what is still missing."""
        ...

    def mention(self, user_id: str) -> str:
        """How to name a user so they are notified."""
        ...

    def quote(self, text: str) -> str:
        """Free text typed by a person, made inert (no mentions or links it did not mean)."""
        ...


class ConsoleNotifier:
    """Prints what the bot would post; the demo and the CLI use it."""

    def __init__(self, write=print) -> None:  # type: ignore[no-untyped-def]
        self._write = write
        self._count = 0

    def post_plan(self, view: PlanView, *, channel: str | None) -> MessageRef | None:
        self._count += 1
        self._write(render_text(view.draft, view.policy, view.meta, with_sql=False))
        return MessageRef(channel=channel or "console", ts=str(self._count))

    def post_plan_details(self, view: PlanView, ref: MessageRef) -> None:
        rollback = view.draft.rollback
        label = "found beside the migration" if rollback.source == "file" else "generated"
        self._write(f"  ↳ rollback script ({label}):")
        self._write("\n".join(f"    {line}" for line in rollback.sql.rstrip().splitlines()) + "\n")

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._write(f"  ↳ {text}")

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        meta = view.meta
        if meta is not None and meta.status is not None:
            lines = approval_lines(meta.status, mention=self.mention)
            self._write(f"  ↻ plan #{meta.plan_id} is {meta.state_label}: " + "; ".join(lines))

    def mention(self, user_id: str) -> str:
        return f"@{user_id}"

    def quote(self, text: str) -> str:
        return text
