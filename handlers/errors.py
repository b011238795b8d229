"""One place that turns failures after the ack into a message for the person who asked.

Bolt only logs exceptions raised in lazy listeners, so every lazy listener is wrapped with
``replies_errors``: a UserError becomes an ephemeral message with its text; a Slack refusal or a bug
becomes a short ephemeral apology while the details go to the (redacted) log.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.errors import UserError

log = logging.getLogger(__name__)


def replies_errors(func: Callable[..., None]) -> Callable[..., None]:
    """Wrap a lazy listener that takes ``respond``; Bolt still injects by the wrapped signature."""

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        respond = kwargs["respond"]
        try:
            func(**kwargs)
        except UserError as err:
            respond(text=f":warning: {err}", response_type="ephemeral", replace_original=False)
        except SlackApiError as err:
            code = err.response.get("error", "unknown_error")
            log.warning("Slack refused a call in %s: %s", func.__name__, code)
            hint = " Invite the bot to this channel with `/invite`." if code == "not_in_channel" else ""
            respond(text=f":x: Slack refused the bot's message ({code}).{hint}", response_type="ephemeral")
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("unexpected error in %s (ref %s)", func.__name__, ref)
            respond(
                text=f":x: Something went wrong on the bot's side (ref `{ref}`).", response_type="ephemeral"
            )

    return wrapper
