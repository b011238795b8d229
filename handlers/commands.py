"""``/migrate``: acknowledge within Slack's 3 seconds, then do the work in a lazy listener."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.app import Services
from bot.planning import submit_plan
from handlers.blocks import help_blocks
from handlers.errors import replies_errors
from handlers.slack_notifier import SlackNotifier

PLAN_USAGE = "Usage: `/migrate plan <file> [environment]`"


@dataclass(frozen=True)
class Invocation:
    verb: str
    args: list[str]


def parse(text: str) -> Invocation:
    """Split the command text like a shell would, so quoted file names with spaces work."""
    try:
        words = shlex.split(text or "")
    except ValueError:
        words = (text or "").split()
    if not words:
        return Invocation("help", [])
    return Invocation(words[0].lower(), words[1:])


def register(app: App, services: Services, notifier: SlackNotifier) -> None:
    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        inv = parse(command.get("text", ""))
        if inv.verb == "plan":
            if not 1 <= len(inv.args) <= 2:
                ack(blocks=help_blocks(f":warning: {PLAN_USAGE}"), text=PLAN_USAGE)
                return
            env = inv.args[1] if len(inv.args) > 1 else services.config.default_environment
            ack(text=f"Planning `{inv.args[0]}` for {env}…")
            return
        extra = None if inv.verb == "help" else f":warning: Unknown command `{inv.verb}`."
        ack(blocks=help_blocks(extra), text="migrate-bot help")

    @replies_errors
    def run_command(command: dict[str, Any], respond: Respond) -> None:
        inv = parse(command.get("text", ""))
        if inv.verb != "plan" or not 1 <= len(inv.args) <= 2:
            return
        submit_plan(
            db=services.db,
            config=services.config,
            notifier=notifier,
            env_name=inv.args[1] if len(inv.args) > 1 else None,
            file_arg=inv.args[0],
            author=command["user_id"],
            channel_id=command["channel_id"],
        )

    app.command("/migrate")(ack=ack_command, lazy=[run_command])
