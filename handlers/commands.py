"""``/migrate``: parse and acknowledge on the request thread, then do the work on the bot's own pools.

The ack touches no database, disk or network; planning goes to the ``work`` pool (it reads files and
the target), status, list and repost to the quick ``decisions`` pool.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.app import Services
from bot.config import BotConfig
from bot.markup import quote
from bot.plans import get_plan
from bot.states import PlanState
from bot.views import message_ref, plan_view
from handlers.blocks import help_blocks, list_text, status_text
from handlers.errors import replies_errors
from handlers.followup import by_response, follow_up
from handlers.incidents import incident_command_job
from handlers.runs import run_command_job
from handlers.slack_notifier import SlackNotifier
from handlers.timeline import timeline_command_job
from handlers.worker import Pools, Worker

# verb -> (fewest and most arguments (None: any number), usage)
USAGE: dict[str, tuple[int, int | None, str]] = {
    "plan": (1, 2, "`/migrate plan <file> [environment] [--ref <branch|tag|commit>]`"),
    "status": (1, 1, "`/migrate status <plan id>`"),
    "list": (0, 0, "`/migrate list`"),
    "repost": (1, 1, "`/migrate repost <plan id>`"),
    "run": (1, None, "`/migrate run <plan id> [next|all|<step>] [outside-window reason…]`"),
    "rehearse": (1, 2, "`/migrate rehearse <plan id> [synthetic rows per table]`"),
    "abort": (1, 1, "`/migrate abort <plan id>`"),
    "rollback": (2, None, "`/migrate rollback <plan id> <reason>`"),
    "restore": (1, 1, "`/migrate restore <plan id>`"),
    "incident": (3, None, "`/migrate incident <plan id> <P0|P1|P2|P3> <what is wrong…>`"),
    "freeze": (2, None, "`/migrate freeze <environment> <reason>`"),
    "unfreeze": (1, 1, "`/migrate unfreeze <environment>`"),
    "schedule": (2, 2, "`/migrate schedule <plan id> <2026-11-28T02:00|next-window|cancel>`"),
    "timeline": (1, 2, "`/migrate timeline <plan id> [md|json|csv|png]`"),
}
# Longest argument worth reading: a file name or an environment.
MAX_ARGUMENT = 500


@dataclass(frozen=True)
class Invocation:
    verb: str
    args: list[str]
    ref: str | None = None  # plan's --ref: the git branch, tag or commit to read the file at

    @property
    def valid(self) -> bool:
        if self.verb not in USAGE:
            return False
        fewest, most, _ = USAGE[self.verb]
        return fewest <= len(self.args) and (most is None or len(self.args) <= most)


def parse(text: str) -> Invocation:
    """Split the command text like a shell would, so quoted file names with spaces work."""
    try:
        words = shlex.split(text or "")
    except ValueError:
        words = (text or "").split()
    if not words:
        return Invocation("help", [])
    verb, args, ref = words[0].lower(), words[1:], None
    if verb == "plan":
        for position, word in enumerate(args):
            if word == "--ref" and position + 1 < len(args):
                ref, args = args[position + 1], args[:position] + args[position + 2 :]
                break
            if word.startswith("--ref="):
                ref, args = word.removeprefix("--ref="), args[:position] + args[position + 1 :]
                break
    return Invocation(verb, args, ref)


def request_key(command: dict[str, Any]) -> str:
    """The same command delivered twice (a retry, a replay) has the same key; another typing has another.

    Slack gives every invocation its own trigger_id; without one, the payload itself identifies it.
    """
    trigger = command.get("trigger_id") or hashlib.sha256(repr(sorted(command.items())).encode()).hexdigest()
    return f"command:{trigger}"


def migrate_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    config: BotConfig = context["config"]
    pools: Pools = context["pools"]
    inv = parse(command.get("text", ""))
    if inv.verb not in USAGE:
        extra = None if inv.verb == "help" else f":warning: Unknown command `{quote(inv.verb[:50])}`."
        ack(blocks=help_blocks(extra), text="migrate-bot help")
        return
    if not inv.valid:
        usage = f"Usage: {USAGE[inv.verb][2]}"
        ack(blocks=help_blocks(f":warning: {usage}"), text=usage)
        return
    if any(len(arg) > MAX_ARGUMENT for arg in inv.args):
        ack(text=f":warning: An argument is longer than {MAX_ARGUMENT} characters; no file has such a name.")
        return
    pool = pools.work if inv.verb == "plan" else pools.decisions
    waiting = pool.waiting
    queued = f" (queued behind {waiting} other request(s))" if waiting else ""
    options: dict[str, str | None] = {}
    if inv.verb == "plan":
        env = inv.args[1] if len(inv.args) > 1 else config.default_environment
        at = f" at `{quote(inv.ref)}`" if inv.ref else ""
        ack(text=f"Planning `{quote(inv.args[0])}`{at} for {quote(env)}…{queued}")
        options["ref"] = inv.ref
    elif queued:
        ack(text=f"⏳ Queued{queued}; the answer follows.")
    else:
        ack()
    pool.submit(
        JOBS[inv.verb], args=inv.args, command=command, response_url=command["response_url"], **options
    )


@replies_errors
def plan_job(
    worker: Worker, *, args: list[str], command: dict[str, Any], respond: Respond, ref: str | None = None
) -> None:
    services = worker.services
    submission = services.planner.submit(
        env_name=args[1] if len(args) > 1 else None,
        file_arg=args[0],
        author=command["user_id"],
        typed_in=command["channel_id"],
        request_key=request_key(command),
        ref=ref,
    )
    plan = submission.plan
    if submission.duplicate or plan is None:
        return
    if submission.unchanged:
        text = _unchanged_text(services, SlackNotifier(worker.client), plan.id)
        respond(text=text, response_type="ephemeral", replace_original=False)
        return
    follow_up(
        services,
        submission.owed,
        by_response(respond),
        plan_id=plan.id,
        done=f"Plan #{plan.id} is stored",
        pending="it will be posted when Slack accepts it",
    )


def _unchanged_text(services: Services, notifier: SlackNotifier, plan_id: int) -> str:
    """The open plan of the same bytes, linked when Slack can give its permalink."""
    plan, status = services.approvals.status(plan_id)
    ref = message_ref(plan)
    link = notifier.permalink(ref) if ref else None
    where = f" <{link}|See the plan>." if link else ""
    return (
        f"`{quote(plan.file_name)}` is unchanged since plan #{plan.id} ({PlanState(plan.state).label}, "
        f"{len(status.given)} of {len(status.slots)} sign-offs): nothing new was planned.{where}"
    )


@replies_errors
def status_job(worker: Worker, *, args: list[str], command: dict[str, Any], respond: Respond) -> None:
    services = worker.services
    plan, status = services.approvals.status(args[0])
    with services.db.session() as session:
        problems = services.outbox.problems(session, plan)
    respond(text=status_text(plan_view(services.config, plan, status), problems), response_type="ephemeral")


@replies_errors
def list_job(worker: Worker, *, args: list[str], command: dict[str, Any], respond: Respond) -> None:
    services = worker.services
    views = [
        plan_view(services.config, plan, status)
        for plan, status in services.approvals.open_plans(command["channel_id"])
    ]
    respond(text=list_text(views), response_type="ephemeral")


@replies_errors
def repost_job(worker: Worker, *, args: list[str], command: dict[str, Any], respond: Respond) -> None:
    services = worker.services
    with services.db.session() as session:
        plan = get_plan(session, args[0])
        count = services.outbox.repost(session, plan)
    if count:
        text = f"🔁 Sending {count} message(s) of plan #{plan.id} again."
    else:
        text = f"Nothing of plan #{plan.id} was refused by Slack; nothing to send again."
    respond(text=text, response_type="ephemeral")


JOBS: dict[str, Callable[..., None]] = {
    **{
        verb: partial(run_command_job, verb=verb)
        for verb in ("run", "rehearse", "abort", "rollback", "restore", "freeze", "unfreeze", "schedule")
    },
    "plan": plan_job,
    "status": status_job,
    "list": list_job,
    "repost": repost_job,
    "incident": incident_command_job,
    "timeline": timeline_command_job,
}


def register(app: App) -> None:
    app.command("/migrate")(migrate_command)
