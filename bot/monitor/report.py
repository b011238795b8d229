"""How the monitor window reads in the plan's thread: one live line, redrawn as it samples (bot markup)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.markup import quote
from bot.monitor.rules import ERROR_RATE, HEALTH, LATENCY, degradation_pct
from bot.monitor.signals import CONNECTIONS, DEADLOCKS, LOCK_WAITS, LONG_RUNNING
from storage.models import MonitorRecord, aware

ICONS = {"baseline": "⏳", "watching": "👀", "held": "⏸️", "all_clear": "✅", "stopped": "↩️"}
# The database's signals, shown as the guide's Monitoring During Migration lists them.
SIGNALS = {
    CONNECTIONS: "connections",
    LONG_RUNNING: "long-running queries",
    LOCK_WAITS: "lock waits",
}


def monitor_line(record: MonitorRecord, now: datetime) -> str:
    """Where the window stands: elapsed of its length, each value against the baseline, its decision."""
    head = f"{ICONS.get(record.state, '👀')} *Monitor*"
    if record.opened_at is None or record.ends_at is None:
        return f"{head} · baseline taken; the window opens when the migration is applied"
    opened, ends = aware(record.opened_at), aware(record.ends_at)
    minutes = (ends - opened).total_seconds() / 60
    elapsed = min((now - opened).total_seconds() / 60, minutes)
    parts = [f"{elapsed:.0f} of {minutes:g} min", *_values(record.last.get("values", {}), record.baseline)]
    parts.append(f"{record.samples} samples")
    if record.decision:
        parts.append(quote(record.decision))
    return f"{head} · " + " · ".join(parts)


def monitor_summary(record: MonitorRecord) -> str:
    """How the window went, for its end: the worst of each value against the baseline."""
    worst = _values(record.worst, record.baseline, prefix="worst ")
    return ", ".join([f"{record.samples} samples", *worst])


def _values(values: dict[str, Any], baseline: dict[str, Any], prefix: str = "") -> list[str]:
    base = {metric: entry.get("value") for metric, entry in baseline.items()}
    shown = []
    if ERROR_RATE in values:
        shown.append(_number(f"{prefix}error rate", values[ERROR_RATE], base.get(ERROR_RATE), "%"))
    if LATENCY in values:
        value, slower = values[LATENCY], None
        if value is not None:
            slower = degradation_pct(value, base.get(LATENCY))
        text = _number(f"{prefix}latency", value, base.get(LATENCY), "")
        shown.append(text + (f", {slower:+.0f}%" if slower is not None else ""))
    if HEALTH in values:
        health = values[HEALTH]
        shown.append(
            f"{prefix}health " + ("unknown" if health is None else "✅" if health >= 1 else "❌ failing")
        )
    for metric, label in SIGNALS.items():
        if values.get(metric) is not None:
            shown.append(f"{label} {values[metric]:g}")
    if values.get(DEADLOCKS) is not None and base.get(DEADLOCKS) is not None:
        shown.append(f"deadlocks +{values[DEADLOCKS] - base[DEADLOCKS]:g}")
    return shown


def _number(label: str, value: float | None, baseline: float | None, unit: str) -> str:
    now = "unknown" if value is None else f"{value:.3g}{unit}"
    return f"{label} {now}" + (f" (baseline {baseline:.3g}{unit})" if baseline is not None else "")
