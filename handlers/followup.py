"""Telling people the truth about what Slack has not shown yet.

A decision is stored before Slack hears of it; when the outbox has not delivered its announcement a few
seconds later (Slack rate limits, is down, or refused), the person who caused it is told so, instead
of being left to believe the click did nothing or to read an error for an approval that happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from slack_bolt import Respond

from bot.app import Services
from bot.outbox import Delivery, delivery_problems, waiting_reasons

log = logging.getLogger(__name__)

# How long the outbox gets to deliver before the person who acted is told it has not.
FOLLOW_UP_SECONDS = 3.0

Tell = Callable[[str], None]


def by_response(respond: Respond) -> Tell:
    """Tell the person through the request's response_url, visible to them only."""

    def tell(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    return tell


def follow_up(
    services: Services, owed: Sequence[int], tell: Tell, *, plan_id: int, done: str, pending: str
) -> None:
    """After FOLLOW_UP_SECONDS, tell ``done`` + what is wrong if any of ``owed`` is still undelivered."""
    if not owed:
        return
    timer = threading.Timer(
        FOLLOW_UP_SECONDS, _check, args=(services, list(owed), tell, plan_id, done, pending)
    )
    timer.daemon = True
    timer.start()


def _check(services: Services, owed: list[int], tell: Tell, plan_id: int, done: str, pending: str) -> None:
    try:
        with services.db.session() as session:
            rows = services.outbox.unsent(session, owed)
        if not rows:
            return
        if any(r.state == Delivery.FAILED.value for r in rows):
            tell(f"{done}, but Slack refused to show it.\n" + "\n".join(delivery_problems(plan_id, rows)))
            return
        tell(f"{done}; {pending} ({waiting_reasons(rows)}).")
    except Exception:
        log.exception("could not follow up on plan #%s", plan_id)
