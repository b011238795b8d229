"""Failures turned into answers, in one place for each path.

Work-path jobs are wrapped with ``replies_errors``: a UserError becomes an ephemeral message with its
text; a bug becomes a short ephemeral apology with a reference while the details go to the (redacted)
log. On the ack path, ``ack_error`` is the app's error handler: whatever a listener raised, Slack gets
a 200, never Bolt's 500, and the person an answer.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, cast

from slack_bolt import BoltResponse, Respond

from bot.errors import UserError
from bot.markup import quote_message
from bot.redact import redact_value

log = logging.getLogger(__name__)


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
    """Wrap a job that takes ``respond`` (keyword): what it says is masked, its failures reach the person
    who asked."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        respond = kwargs["respond"] = redacting(kwargs["respond"])
        try:
            func(*args, **kwargs)
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
