"""How a rehearsal reads in the plan's thread: a line redrawn as it goes, then its report (bot markup)."""

from __future__ import annotations

from datetime import datetime
from textwrap import shorten
from typing import Any

from bot.markup import quote
from storage.models import RehearsalRecord, aware

# How many of a report's findings of one kind the thread shows; the rest is in the stored report.
SHOWN = 5
SHOWN_STATEMENTS = 15
# Characters of a statement's SQL shown on its line.
SQL_SHOWN = 60
ICONS = {"queued": "⏳", "running": "🔄", "passed": "✅", "failed": "❌", "interrupted": "⚠️"}


def rehearsal_line(record: RehearsalRecord, now: datetime) -> str:
    """Its line in the thread: queued, running (for how long, doing what), or how it ended."""
    head = f"{ICONS.get(record.state, '⚠️')} *Rehearsal #{record.id}*"
    if record.state == "queued":
        return f"{head} · queued: up, down and up again on a scratch copy of the target"
    started = aware(record.started_at) if record.started_at else now
    took = ((aware(record.finished_at) if record.finished_at else now) - started).total_seconds()
    if record.state == "running":
        return f"{head} · running for {took:.0f} s" + (
            f" · {quote(record.progress)}" if record.progress else ""
        )
    return f"{head} · {record.state} after {took:.1f} s" + (
        f": `{quote(record.error)}`" if record.error else " (the report follows)"
    )


def report_lines(record: RehearsalRecord) -> list[str]:
    """The thread's account of a rehearsal: its verdict, each phase, each statement as measured (time,
    locks next to the analysed ones, rewrites), what went wrong and, when it passed, the checklist items
    it proves."""
    report = record.report
    head = f"{ICONS.get(record.state, '⚠️')} *Rehearsal #{record.id} {record.state}*"
    if not report:
        return [f"{head}: `{quote(record.error or 'no report')}`"]
    scratch = report.get("scratch") or {}
    lines = [
        f"{head} in {report['seconds']:.1f} s on a copy made by {scratch.get('strategy', '?')}"
        + (f" in {scratch['seconds']:.1f} s" if "seconds" in scratch else "")
        + (f", holding {quote(report['data'])}" if report.get("data") else ", without rows")
        + f"; the migration took {report['migration_seconds']:.2f} s"
        + f" (limit {report['max_duration_seconds']:g} s)"
    ]
    lines += [f"• not by {quote(fallback)}" for fallback in scratch.get("fallbacks", [])]
    lines += [
        f"• {phase['name']}: {phase['outcome']} ({phase['seconds']:.2f} s)"
        + (f": `{quote(phase['error'])}`" if phase.get("error") else "")
        for phase in report["phases"]
    ]
    applied = next((p for p in report["phases"] if p["name"] == "apply"), None)
    statements = applied["statements"] if applied else []
    if statements:
        lines.append("*Measured*")
        lines += [_measured(s) for s in statements[:SHOWN_STATEMENTS]]
        if len(statements) > SHOWN_STATEMENTS:
            lines.append(f"(and {len(statements) - SHOWN_STATEMENTS} more statements in the stored report)")
    for title, items in (
        ("Differences after the rollback", report["differences"]),
        ("Locks not as analysed", report["lock_mismatches"]),
        ("Over the time limit", report["over_limit"]),
    ):
        if items:
            lines.append(
                f"*{title}*: "
                + "; ".join(quote(str(i)) for i in items[:SHOWN])
                + (f" (and {len(items) - SHOWN} more)" if len(items) > SHOWN else "")
            )
    if record.state == "passed":  # only a passing rehearsal ticks the plan's checklist
        lines += [
            f"☑️ {quote(item)}: {quote(evidence)}" for item, evidence in report.get("proves", {}).items()
        ]
    return lines


def _measured(statement: dict[str, Any]) -> str:
    locks = [
        f"{lock['observed'] or 'no lock'} on {lock['relation']}"
        + (f" (analysed: {lock['analysed']})" if lock["mismatch"] else "")
        for lock in statement["locks"]
    ]
    sql = shorten(statement["sql"], SQL_SHOWN, placeholder=" …")
    return (
        f"• L{statement['line']} `{quote(sql)}` {statement['seconds']:.3f} s"
        + (f" · {quote(', '.join(locks))}" if locks else "")
        + (f" · rewrote {quote(', '.join(statement['rewritten']))}" if statement["rewritten"] else "")
        + (" ⚠️ lock not as analysed" if any(lock["mismatch"] for lock in statement["locks"]) else "")
    )
