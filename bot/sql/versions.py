"""PostgreSQL's supported major versions: with the target's version unknown, rules assume the oldest one.

End-of-life dates are the PostgreSQL project's versioning policy (five years after each major's release,
on the November minor release); a major past its date is no longer supported.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

# ISO dates, compared as text: every offline plan asks, and loading datetime would be most of the cost
END_OF_LIFE = {
    13: "2025-11-13",
    14: "2026-11-12",
    15: "2027-11-11",
    16: "2028-11-09",
    17: "2029-11-08",
    18: "2030-11-14",
}


def oldest_supported(today: date | None = None) -> int:
    """``server_version_num`` of the oldest major still supported on ``today`` (the newest, past them all)."""
    day = today.isoformat() if today else time.strftime("%Y-%m-%d")
    supported = [major for major, end in END_OF_LIFE.items() if end > day]
    return min(supported, default=max(END_OF_LIFE)) * 10000
