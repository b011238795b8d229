"""The port through which the outbox tells people things; Slack and the console implement it.

The outbox's deliverer calls it, never a request handler: whatever a call raises decides what happens
to the message. ``DeliveryDeferred`` (rate limited, Slack or the network down) tries again later;
``DeliveryFailed`` (the channel is gone, the bot is not in it) stops until someone reposts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.markup import plain
from bot.redact import redact
from bot.report import PlanView as PlanView  # what every Notifier method is given
from bot.report import approval_lines, render_text


@dataclass(frozen=True)
class MessageRef:
    """Where an announcement landed, so later news can go to its thread."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Attachment:
    """A file for a plan's thread (a timeline export): its name, bytes and title."""

    name: str
    content: bytes
    title: str


class Part(StrEnum):
    """The pieces of a plan posted in its thread after the plan itself."""

    MIGRATION = "migration"
    ROLLBACK = "rollback"
    CHECKLIST = "checklist"


class Choice(StrEnum):
    """What a person can answer to a message that asks (an incident's page, a question in a thread); each
    front end draws its own control for it. The value carried with it says about what."""

    ACKNOWLEDGE = "acknowledge"
    ROLL_BACK = "roll_back"
    RESOLVE = "resolve"
    CONTINUE = "continue"  # a window that cannot tell: keep watching
    TICK = "tick"  # an item of the post-migration checklist is done


class DeliveryDeferred(Exception):
    """Not delivered now, worth trying again: after ``retry_after`` seconds when the other side said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class DeliveryFailed(Exception):
    """Refused for good (``reason`` is Slack's error code); trying again changes nothing until fixed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Notifier(Protocol):
    def post_plan(self, view: PlanView, *, channel: str) -> MessageRef:
        """Announce a plan; returns where, so its thread can be used later."""
        ...

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        """Redraw the plan's message in place: state, sign-offs, what is still missing."""
        ...

    def post_part(self, view: PlanView, ref: MessageRef, part: Part) -> None:
        """The SQL, the rollback or the checklist, in the plan's thread."""
        ...

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        """Add news (bot markup, see ``bot.markup``) to a plan's thread."""
        ...

    def post_line(self, ref: MessageRef, text: str) -> MessageRef:
        """A line in the plan's thread that will be redrawn (a step's progress); returns where it is."""
        ...

    def update_line(self, line: MessageRef, text: str) -> None:
        """Redraw such a line."""
        ...

    def post_choices(
        self, *, channel: str, text: str, choices: Sequence[tuple[Choice, str]], thread: MessageRef | None
    ) -> MessageRef:
        """A message that asks: ``choices`` are (choice, value) pairs; ``channel`` may be a user's id (a
        direct message); ``thread`` puts it in a plan's thread."""
        ...

    def post_link(self, view: PlanView, ref: MessageRef, *, channel: str) -> None:
        """Point ``channel`` (where the plan was asked for) at the plan posted elsewhere."""
        ...

    def post_ephemeral(self, *, channel: str, user: str, text: str) -> None:
        """Tell one person something in a channel, visible to them only."""
        ...

    def post_message(self, *, channel: str, text: str) -> None:
        """Tell a channel something that is not news of one plan (a freeze, a scheduled run's notice)."""
        ...

    def permalink(self, ref: MessageRef) -> str | None:
        """A link to a posted message, or None when it cannot be had now."""
        ...

    def upload_file(self, ref: MessageRef, files: Sequence[Attachment], *, text: str) -> None:
        """Files in the plan's thread, shared together under ``text``."""
        ...


class ConsoleNotifier:
    """Prints what the bot would post, secrets masked; the demo and the CLI use it."""

    def __init__(self, write=print) -> None:  # type: ignore[no-untyped-def]
        self._write = write
        self._count = 0

    def _say(self, text: str) -> None:
        self._write(redact(plain(text)))

    def post_plan(self, view: PlanView, *, channel: str) -> MessageRef:
        self._count += 1
        self._say(render_text(view, with_sql=False))
        return MessageRef(channel=channel, ts=str(self._count))

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        meta = view.meta
        if meta is not None and meta.status is not None:
            self._say(
                f"  ↻ plan #{meta.plan_id} is {meta.state_label}: " + "; ".join(approval_lines(meta.status))
            )

    def post_part(self, view: PlanView, ref: MessageRef, part: Part) -> None:
        if part is not Part.ROLLBACK:  # the console shows the plan's rollback only; the rest is in `plan`
            return
        label = "found beside the migration" if view.rollback_source == "file" else "generated"
        self._say(f"  ↳ rollback script ({label}):")
        self._say("\n".join(f"    {line}" for line in view.rollback_sql.rstrip().splitlines()) + "\n")

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._say(f"  ↳ {text}")

    def post_line(self, ref: MessageRef, text: str) -> MessageRef:
        self._count += 1
        self._say(f"  ↳ {text}")
        return MessageRef(channel=ref.channel, ts=str(self._count))

    def update_line(self, line: MessageRef, text: str) -> None:
        self._say(f"  ↻ {text}")

    def post_choices(
        self, *, channel: str, text: str, choices: Sequence[tuple[Choice, str]], thread: MessageRef | None
    ) -> MessageRef:
        self._count += 1
        where = "  ↳ " if thread else f"  (to {channel}) "
        self._say(where + text + " [" + " | ".join(c.value.replace("_", " ") for c, _ in choices) + "]")
        return MessageRef(channel=channel, ts=str(self._count))

    def post_link(self, view: PlanView, ref: MessageRef, *, channel: str) -> None:
        self._say(f"  → {channel}: the plan is posted in {ref.channel}")

    def post_ephemeral(self, *, channel: str, user: str, text: str) -> None:
        self._say(f"  (to {user}) {text}")

    def post_message(self, *, channel: str, text: str) -> None:
        self._say(f"[{channel}] {text}")

    def permalink(self, ref: MessageRef) -> str | None:
        return None

    def upload_file(self, ref: MessageRef, files: Sequence[Attachment], *, text: str) -> None:
        self._say(f"  ↳ {text}: " + ", ".join(f"{f.name} ({len(f.content):,} bytes)" for f in files))
