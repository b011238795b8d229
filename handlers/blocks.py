"""Block Kit builders: pure functions from domain views to Slack message payloads.

Lines come from ``bot.report`` so Slack and the CLI say the same things; long lists are cut to fit
Slack's limits here, and the thread carries the full SQL.
"""

from __future__ import annotations

from typing import Any

from bot.notifier import PlanView
from bot.report import (
    LEVEL_ICON,
    complexity_line,
    hazard_line,
    operation_line,
    requirement_lines,
    rollback_line,
    target_line,
    title,
)
from handlers.blockkit import truncate
from handlers.ids import PlanBlock

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
# Each list (hazards, locks…) is one section of at most this many lines; the rest is counted.
MAX_LINES = 12

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as its docs require."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, limit: int = SECTION_LIMIT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def section(block_id: str, heading: str, lines: list[str]) -> Block:
    """One titled list; lines past MAX_LINES or the character limit are summarised, never silently lost."""
    shown = lines[:MAX_LINES]
    text = f"*{heading}*\n" + "\n".join(f"• {escape(line)}" for line in shown)
    if len(lines) > len(shown):
        text += f"\n_…and {len(lines) - len(shown)} more: see the thread or `migrate-bot plan`_"
    return {"type": "section", "block_id": block_id, "text": mrkdwn(text)}


def plan_blocks(view: PlanView) -> list[Block]:
    draft, meta, analysis = view.draft, view.meta, view.draft.analysis
    fields = [
        f"*Complexity*\n{LEVEL_ICON[analysis.complexity]} {analysis.complexity.label}",
        f"*Environment*\n{escape(draft.environment)}",
        f"*Strongest lock*\n{analysis.strongest_lock.value}",
        f"*Statements*\n{len(analysis.statements)}",
    ]
    if meta:
        fields += [f"*State*\n{meta.state.replace('_', ' ')}", f"*Author*\n<@{meta.author}>"]
    hazards = [
        hazard_line(h, analysis) + (f"\n    ↳ _{h.safe_alternative}_" if h.safe_alternative else "")
        for h in analysis.hazards
    ]
    blocks: list[Block] = [
        {
            "type": "header",
            "block_id": PlanBlock.HEADER,
            "text": {"type": "plain_text", "text": truncate(title(draft, meta), HEADER_LIMIT)},
        },
        {"type": "section", "block_id": PlanBlock.FACTS, "fields": [mrkdwn(f, FIELD_LIMIT) for f in fields]},
        {
            "type": "context",
            "block_id": PlanBlock.CONTEXT,
            "elements": [
                mrkdwn(escape(complexity_line(draft, view.policy))),
                mrkdwn(f"`sha256 {draft.migration.sha256[:12]}` · {escape(target_line(analysis.target))}"),
            ],
        },
        {"type": "divider"},
        section(PlanBlock.HAZARDS, f"Hazards ({len(hazards)})", hazards or ["None found"]),
        section(
            PlanBlock.REASONS,
            f"Why {analysis.complexity.label}",
            [f"{r.level.label}: {r.reason}" for r in analysis.complexity_reasons],
        ),
        section(
            PlanBlock.LOCKS,
            "Statements and locks",
            [operation_line(op, analysis) for op in analysis.operations],
        ),
        section(
            PlanBlock.ROLLBACK,
            "Rollback",
            [rollback_line(draft.rollback)]
            + [f"MANUAL: {s.irreversible_reason}" for s in draft.rollback.irreversible],
        ),
        section(PlanBlock.APPROVALS, "Required approvals", requirement_lines(draft.requirement)),
        section(
            PlanBlock.CHECKLIST,
            "Checklist",
            [f"{name}: {len(items)} item(s)" for name, items in view.policy.checklist.items()],
        ),
    ]
    return blocks


def plan_fallback_text(view: PlanView) -> str:
    """Notification text for clients that do not render blocks."""
    a = view.draft.analysis
    return f"{title(view.draft, view.meta)}: {a.complexity.label} complexity, {len(a.hazards)} hazard(s)"


def code_block(heading: str, sql: str) -> str | None:
    """A SQL listing as one mrkdwn message, or None when it is too long for one (then upload a file)."""
    text = f"*{heading}*\n```\n{sql.rstrip()}\n```"
    return text if len(text) <= SECTION_LIMIT else None


def checklist_text(view: PlanView) -> str:
    lines = []
    for name, items in view.policy.checklist.items():
        lines.append(f"*{escape(name)}*")
        lines += [f"☐ {escape(item)}" for item in items]
    return "\n".join(lines)


HELP_TEXT = """*migrate-bot* walks a PostgreSQL migration through the Migration Safety Guide.
• `/migrate plan <file> [environment]`: analyse a migration (statements, locks, hazards, complexity, \
rollback, approvals) and post the plan here
• `/migrate help`: this message"""


def help_blocks(extra: str | None = None) -> list[Block]:
    text = f"{extra}\n\n{HELP_TEXT}" if extra else HELP_TEXT
    return [{"type": "section", "text": mrkdwn(text)}]
