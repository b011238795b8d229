"""Time is a port: every timestamp the bot stores or compares comes from one injected clock.

Tests pass a clock they can move, so an approval window or a delivery backoff passes in no time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
