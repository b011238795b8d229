"""Incidents from Slack: the buttons of a page or a question (and of the post-migration checklist's
reminders), and ``/migrate incident``.

Who may answer is decided on the server for every click (the escalation chain's roles and the plan's
runners); a page answered in a direct message is replaced by what became of it, so nobody answers twice.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.markup import mention
from bot.monitor.incidents import IncidentKind
from bot.monitor.rules import ORDER
from handlers.errors import replies_errors
from handlers.ids import TICK_ACTIONS, IncidentAction
from handlers.reviews import queue_click
from handlers.worker import Worker


def incident_clicked(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    queue_click(incident_button_job, ack, body, context)


@replies_errors
def incident_button_job(worker: Worker, *, body: dict[str, Any], respond: Respond) -> None:
    incidents, action = worker.services.incidents, body["actions"][0]
    user, incident_id = body["user"]["id"], action["value"]
    kind = action["action_id"]
    if TICK_ACTIONS.match(kind):
        item = worker.services.monitors.tick_item(incident_id, user=user)
        respond(text=f"☑️ Ticked “{item}”.", replace_original=False, response_type="ephemeral")
        return
    if kind == IncidentAction.ACKNOWLEDGE:
        incidents.acknowledge(incident_id, user=user)
        text = f"✋ {mention(user)} acknowledged incident #{incident_id}: the chain stops paging."
    elif kind == IncidentAction.ROLL_BACK:
        incidents.roll_back_for(incident_id, user=user)
        text = f"↩️ {mention(user)} rolled back for incident #{incident_id}; progress follows in the thread."
    elif kind == IncidentAction.CONTINUE:
        incidents.resolve(incident_id, user=user, resolution="continue watching")
        text = f"👀 {mention(user)} chose to continue watching (incident #{incident_id})."
    else:
        incidents.resolve(incident_id, user=user, resolution="resolved in Slack")
        text = f"✅ {mention(user)} resolved incident #{incident_id}."
    in_direct_message = body.get("channel", {}).get("id", "").startswith("D")
    respond(text=text, replace_original=in_direct_message, response_type="ephemeral")


@replies_errors
def incident_command_job(
    worker: Worker, *, args: list[str], command: dict[str, Any], respond: Respond
) -> None:
    """``/migrate incident <plan> <P0-P3> <what>``: opened by hand, paged as its severity says."""
    plan_id, severity, what = args[0], args[1].upper(), " ".join(args[2:])
    if severity not in ORDER:
        respond(text=f":warning: severity: one of {', '.join(ORDER)}", response_type="ephemeral")
        return
    incident_id = worker.services.incidents.open(
        plan_id, kind=IncidentKind.MANUAL, severity=severity, reason=what, actor=command["user_id"]
    )
    respond(
        text=f"🚨 Incident #{incident_id} ({severity}) is open on plan #{plan_id.lstrip('#')}; its thread "
        "says who is paged.",
        response_type="ephemeral",
    )


def register(app: App) -> None:
    for action in (
        IncidentAction.ACKNOWLEDGE,
        IncidentAction.ROLL_BACK,
        IncidentAction.RESOLVE,
        IncidentAction.CONTINUE,
    ):
        app.action(action)(incident_clicked)
    app.action(TICK_ACTIONS)(incident_clicked)
