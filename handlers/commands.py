"""``/migrate``: acknowledge within Slack's 3 seconds, then do the work in a lazy listener."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.app import Services
from bot.planning import submit_plan
from bot.reviewing import Reviews, plan_view
from handlers.blocks import help_blocks, list_text, status_text
from handlers.errors import replies_errors

# verb -> (allowed argument counts, usage)
USAGE = {
    "plan": ((1, 2), "`/migrate plan <file> [environment]`"),
    "status": ((1,), "`/migrate status <plan id>`"),
    "list": ((0,), "`/migrate list`"),
}


@dataclass(frozen=True)
class Invocation:
    verb: str
    args: list[str]

    @property
    def valid(self) -> bool:
        return self.verb in USAGE and len(self.args) in USAGE[self.verb][0]


def parse(text: str) -> Invocation:
    """Split the command text like a shell would, so quoted file names with spaces work."""
    try:
        words = shlex.split(text or "")
    except ValueError:
        words = (text or "").split()
    if not words:
        return Invocation("help", [])
    return Invocation(words[0].lower(), words[1:])


def register(app: App, services: Services, reviews: Reviews) -> None:
    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        inv = parse(command.get("text", ""))
        if inv.verb in USAGE and not inv.valid:
            usage = f"Usage: {USAGE[inv.verb][1]}"
            ack(blocks=help_blocks(f":warning: {usage}"), text=usage)
        elif inv.verb == "plan":
            env = inv.args[1] if len(inv.args) > 1 else services.config.default_environment
            ack(text=f"Planning `{inv.args[0]}` for {env}…")
        elif inv.valid:
            ack()
        else:
            extra = None if inv.verb == "help" else f":warning: Unknown command `{inv.verb}`."
            ack(blocks=help_blocks(extra), text="migrate-bot help")

    @replies_errors
    def run_command(command: dict[str, Any], respond: Respond) -> None:
        inv = parse(command.get("text", ""))
        if not inv.valid:
            return
        if inv.verb == "plan":
            submit_plan(
                db=services.db,
                config=services.config,
                notifier=reviews.notifier,
                env_name=inv.args[1] if len(inv.args) > 1 else None,
                file_arg=inv.args[0],
                author=command["user_id"],
                channel_id=command["channel_id"],
            )
        elif inv.verb == "status":
            plan, status = reviews.approvals.status(inv.args[0])
            respond(text=status_text(plan_view(services.config, plan, status)), response_type="ephemeral")
        elif inv.verb == "list":
            views = [
                plan_view(services.config, plan, status)
                for plan, status in reviews.approvals.open_plans(command["channel_id"])
            ]
            respond(text=list_text(views), response_type="ephemeral")

    app.command("/migrate")(ack=ack_command, lazy=[run_command])
