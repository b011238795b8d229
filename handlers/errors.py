"""Failures turned into answers, in one place for each path.

Work-path jobs are wrapped with ``replies_errors``: a UserError becomes an ephemeral message with its
text; a bug becomes a short ephemeral apology with a reference while the details go to the (redacted)
log. On the ack path, ``ack_error`` is the app's error handler: whatever a listener raised, Slack gets
a 200, never Bolt's 500, and the person an answer.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from slack_bolt import BoltResponse, Respond

from bot.errors import UserError
from bot.markup import quote_message
from bot.redact import redact_value

log = logging.getLogger(__name__)

# A click that waited this long for a worker is told why nothing happened meanwhile.
BUSY_NOTICE_SECONDS = 3.0


def apology(where: str, error: BaseException) -> str:
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error in %s (ref %s)", where, ref, exc_info=error)
    return f":x: Something went wrong on the bot's side (ref `{ref}`)."


def redacting(respond: Respond) -> Respond:
    """``respond`` with every text masked (``bot.redact``), as everything else the bot sends is."""

    def masked(**kwargs: Any) -> Any:
        return respond(**redact_value(kwargs))

    return cast(Respond, masked)


def replies_errors(func: Callable[..., None]) -> Callable[..., None]:
    """Make a job of ``func(worker, *, respond, …)``: it is called with the request's ``response_url``
    (a string pickles; a Respond need not), answers through it masked, and its failures reach the person
    who asked. Given ``queued_at`` (when a click was queued: its ack could not say so), a job that
    waited long in a busy queue first says so, since the clicker saw nothing happen meanwhile."""

    @functools.wraps(func)
    def wrapper(worker: Any, /, *, response_url: str, queued_at: float | None = None, **kwargs: Any) -> None:
        respond = redacting(Respond(response_url=response_url))
        waited = time.time() - queued_at if queued_at is not None else 0.0
        if waited >= BUSY_NOTICE_SECONDS:
            respond(
                text=f"⏳ The bot was busy: your click waited {waited:.0f} s in its queue; handling it now.",
                response_type="ephemeral",
                replace_original=False,
            )
        try:
            func(worker, respond=respond, **kwargs)
        except UserError as err:
            respond(
                text=f":warning: {quote_message(str(err))}", response_type="ephemeral", replace_original=False
            )
        except Exception as err:
            respond(text=apology(func.__name__, err), response_type="ephemeral", replace_original=False)

    return wrapper


def ack_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """Bolt's error handler: a listener that raised still answers 200 (a command with the apology)."""
    text = apology(f"the ack of {body.get('type') or body.get('command') or 'a request'}", error)
    if "command" in body:
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    return BoltResponse(status=200, body="")
