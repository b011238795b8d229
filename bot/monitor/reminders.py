"""The post-migration checklist, carried by reminders: after 1 hour, 24 hours and 7 days (the policy's
``reminder_hours``, one per section of ``post_checklist``), with what the bot can measure filled in and
the rest left for people to tick.

What is measured is read when the reminder is due (the window is long over at 24 hours): health, the
error rate against the normal rate, latency and connections against the baseline, deadlocks since it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.markup import quote
from bot.monitor.rules import ERROR_RATE, HEALTH, LATENCY, degradation_pct
from bot.monitor.signals import CONNECTIONS, DEADLOCKS, LOCK_TIMEOUTS
from bot.monitor.sources import Sample
from bot.policy import Policy

# Items measured by the bot, by their text in the policy's defaults; a renamed item is ticked by people.
HEALTH_ITEM = "Application health checks passing"
ERROR_ITEM = "Error rate within normal range (<1%)"
RESPONSE_ITEM = "Response times within SLA"
POOL_ITEM = "Database connection pool stable"
DEADLOCK_ITEM = "No deadlocks or lock timeouts"
BASELINE_ITEM = "Performance metrics compared to baseline"


def schedule(policy: Policy, opened: datetime) -> list[dict[str, Any]]:
    """One reminder per section, at its hour after the window opened."""
    hours = policy.monitor.reminder_hours
    return [
        {"section": section, "at": (opened + timedelta(hours=hour)).isoformat(), "sent": False}
        for section, hour in zip(policy.post_checklist, hours, strict=False)
    ]


def next_due(reminders: list[dict[str, Any]]) -> datetime | None:
    due = [datetime.fromisoformat(r["at"]) for r in reminders if not r["sent"]]
    return min(due, default=None)


def measured(
    policy: Policy, now: Mapping[str, Sample], baseline: Mapping[str, Any]
) -> dict[str, tuple[bool | None, str]]:
    """Items the bot can speak to: (ticked, evidence); ``ticked`` None when the evidence is for a person
    to judge (an SLA the bot does not know)."""
    base = {metric: entry.get("value") for metric, entry in baseline.items()}
    value = {metric: sample.value for metric, sample in now.items()}
    found: dict[str, tuple[bool | None, str]] = {}
    if (health := value.get(HEALTH)) is not None:
        found[HEALTH_ITEM] = (health >= 1, "passing" if health >= 1 else "failing")
    if (errors := value.get(ERROR_RATE)) is not None:
        normal = policy.monitor.normal_error_rate_pct
        found[ERROR_ITEM] = (errors < normal, f"{errors:.2g}% (normal < {normal:g}%)")
    if (latency := value.get(LATENCY)) is not None:
        slower = degradation_pct(latency, base.get(LATENCY))
        against = f" ({slower:+.0f}% against the baseline {base[LATENCY]:.3g})" if slower is not None else ""
        found[RESPONSE_ITEM] = (None, f"latency {latency:.3g}{against}")
        if slower is not None and value.get(ERROR_RATE) is not None:
            found[BASELINE_ITEM] = (True, f"error rate {value[ERROR_RATE]:.2g}%, latency {slower:+.0f}%")
    if value.get(CONNECTIONS) is not None:
        was = base.get(CONNECTIONS)
        found[POOL_ITEM] = (
            None,
            f"{value[CONNECTIONS]:g} connections" + (f" (before: {was:g})" if was else ""),
        )
    if value.get(DEADLOCKS) is not None and base.get(DEADLOCKS) is not None:
        more = value[DEADLOCKS] - base[DEADLOCKS]
        note = now[LOCK_TIMEOUTS].detail if LOCK_TIMEOUTS in now else ""
        found[DEADLOCK_ITEM] = (
            more == 0,
            f"{more:g} deadlocks since the migration" + (f"; {note}" if note else ""),
        )
    return found


def reminder_text(
    plan_id: int, section: str, items: list[str], found: Mapping[str, tuple[bool | None, str]]
) -> str:
    """The reminder's text: each item numbered, what was measured beside it; the numbers are its
    buttons' (bot markup)."""
    lines = [f"📋 *Post-migration checklist* of plan #{plan_id}: {quote(section)}"]
    for number, item in enumerate(items, 1):
        ticked, evidence = found.get(item, (None, ""))
        mark = {True: "✅", False: "⚠️", None: "☐"}[ticked]
        lines.append(f"{mark} {number}. {quote(item)}" + (f" · {quote(evidence)}" if evidence else ""))
    return "\n".join(lines)
