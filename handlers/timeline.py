"""``/migrate timeline <plan> [md|json|csv|png]``: the plan's timeline export, uploaded to its thread.

The upload is owed through the outbox like any message (stored with the request, drawn from the store
and sent by the deliverer), so a Slack outage delays it and a restart does not lose it.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.export import Format
from bot.markup import quote
from bot.plans import get_plan
from handlers.errors import replies_errors
from handlers.followup import by_response, follow_up
from handlers.worker import Worker


@replies_errors
def timeline_command_job(
    worker: Worker, *, args: list[str], command: dict[str, Any], respond: Respond
) -> None:
    fmt = args[1].lower() if len(args) > 1 else Format.MD.value
    if fmt not in set(Format):
        formats = ", ".join(f.value for f in Format)
        respond(
            text=f":warning: format: one of {formats}, not `{quote(fmt[:20])}`", response_type="ephemeral"
        )
        return
    services = worker.services
    with services.db.session() as session:
        plan = get_plan(session, args[0])
        owed = services.outbox.file(session, plan, fmt, by=command["user_id"])
        plan_id = plan.id
    if not owed:
        text = f"Plan #{plan_id} has no thread in Slack; `migrate-bot timeline {plan_id}` writes its files."
        respond(text=text, response_type="ephemeral")
        return
    done = f"📎 The timeline of plan #{plan_id} ({fmt})"
    respond(text=f"{done} is on its way to the plan's thread.", response_type="ephemeral")
    follow_up(
        services,
        owed,
        by_response(respond),
        plan_id=plan_id,
        done=f"{done} is stored",
        pending="it is uploaded when Slack accepts it",
    )
