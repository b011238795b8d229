"""PagerDuty's Events API v2: a trigger per incident and level, sent by the outbox's deliverer.

The routing key is a secret: the outbox stores the name of the variable that holds it, and it is read
only here, when the event is sent.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from bot.notifier import DeliveryDeferred, DeliveryFailed

TIMEOUT_SECONDS = 10


def trigger(url: str, key_env: str, event: dict[str, Any]) -> None:
    """Send ``event`` (Events API v2 fields but the routing key); raise as the deliverer expects."""
    key = os.environ.get(key_env)
    if not key:
        raise DeliveryFailed(f"pagerduty_key_missing: {key_env} is not set")
    body = json.dumps({**event, "routing_key": key}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError as err:
        if err.code == 429 or err.code >= 500:
            raise DeliveryDeferred(f"pagerduty_http_{err.code}") from None
        raise DeliveryFailed(f"pagerduty_http_{err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DeliveryDeferred(f"pagerduty_unreachable: {type(err).__name__}") from None
