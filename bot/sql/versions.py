"""PostgreSQL's supported major versions: with the target's version unknown, rules assume the oldest one.

End-of-life dates are the PostgreSQL project's versioning policy (five years after each major's release,
on the November minor release); a major past its date is no longer supported.
"""

from __future__ import annotations

from datetime import date

END_OF_LIFE = {
    13: date(2025, 11, 13),
    14: date(2026, 11, 12),
    15: date(2027, 11, 11),
    16: date(2028, 11, 9),
    17: date(2029, 11, 8),
    18: date(2030, 11, 14),
}


def oldest_supported(today: date | None = None) -> int:
    """``server_version_num`` of the oldest major still supported on ``today`` (the newest, past them all)."""
    today = today or date.today()
    supported = [major for major, end in END_OF_LIFE.items() if end > today]
    return min(supported, default=max(END_OF_LIFE)) * 10000
