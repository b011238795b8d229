"""A plan as a reader sees it, for terminals and pull requests (text, Markdown; JSON is ``bot.plan_json``).

The line formatters here are shared with the Slack renderer so both say exactly the same things.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.drafting import MigrationFile, PlanDraft
from bot.plan_json import PIECE_CHARS
from bot.rules import PEER_ROLE, ApprovalRequirement, PlanningRules, display_name
from bot.sql.model import Level
from bot.states import OPEN_STATES, PlanState
from bot.summary import HazardLine, Listing, MappedLines, PlanSummary

if TYPE_CHECKING:
    from bot.approvals import ApprovalStatus

LEVEL_ICON = {Level.LOW: "🟢", Level.MEDIUM: "🟡", Level.HIGH: "🔴"}


@dataclass(frozen=True)
class PlanMeta:
    """What only a stored plan has."""

    plan_id: int
    state: str
    author: str
    status: ApprovalStatus | None = None
    run: tuple[str, ...] = ()  # the run's steps and their states (bot.execution.report.run_lines)
    ticked: dict[str, str] = field(default_factory=dict)  # checklist items its evidence ticks

    @property
    def state_label(self) -> str:
        return PlanState(self.state).label


@dataclass(frozen=True)
class PlanView:
    """What a front end needs to show a plan: drawn from a draft, or from a stored plan without rebuilding
    its analysis (``bot.views``)."""

    environment: str
    migration: MigrationFile
    rollback_source: str  # "file" or "generated"
    rollback_sql: str
    requirement: ApprovalRequirement
    summary: PlanSummary
    meta: PlanMeta | None
    rules: PlanningRules

    @classmethod
    def of_draft(cls, draft: PlanDraft, rules: PlanningRules, meta: PlanMeta | None = None) -> PlanView:
        """A draft shown whole: every line of every list (a plan printed once, or in a test)."""
        return cls(
            environment=draft.environment,
            migration=draft.migration,
            rollback_source=draft.rollback.source,
            rollback_sql=draft.rollback.sql,
            requirement=draft.requirement,
            summary=PlanSummary.of(draft.analysis, draft.rollback, draft.rollback_analysis, limit=None),
            meta=meta,
            rules=rules,
        )


def _identity(text: str) -> str:
    return text


def approval_lines(
    status: ApprovalStatus,
    *,
    mention: Callable[[str], str] = _identity,
    quote: Callable[[str], str] = _identity,
) -> list[str]:
    """Each sign-off the plan needs, given (who, when) or still missing; the same on every front end.

    ``mention`` renders a user id (Slack: ``<@U123>``); ``quote`` escapes free text such as a reason.
    """
    from storage.models import aware  # only a stored plan has sign-offs: `migrate-bot plan` needs no store

    if not status.slots and not status.rehearsal_required:
        return ["No approval required"]
    lines = []
    for slot in status.slots:
        given = status.given.get(slot.name)
        if given is None:
            who = "anyone but the author" if slot.role == PEER_ROLE else display_name(slot.role)
            lines.append(f"⏳ {slot.label}: waiting for {who}")
            continue
        line = f"✅ {slot.label}: {mention(given.user_id)} · {aware(given.at):%Y-%m-%d %H:%M} UTC"
        if given.via == "cli":
            line += f" (break-glass: {quote(given.reason or '')})"
        lines.append(line)
    if status.rehearsal is not None:
        when = aware(status.rehearsal.finished_at or status.rehearsal.created_at)
        lines.append(
            f"✅ Rehearsal report: rehearsal #{status.rehearsal.id} passed · {when:%Y-%m-%d %H:%M} UTC"
        )
    elif status.rehearsal_required:
        lines.append(
            "⏳ Rehearsal report: a passing rehearsal of these exact bytes is required (`/migrate rehearse`)"
        )
    if status.state in OPEN_STATES:
        lines.append(f"Approvals expire {status.expires_at:%Y-%m-%d %H:%M} UTC")
    return lines


def title(view: PlanView) -> str:
    prefix = f"Plan #{view.meta.plan_id}: " if view.meta else "Plan: "
    at = f" @ {view.migration.commit[:12]}" if view.migration.commit else ""
    return f"{prefix}{view.migration.name}{at} → {view.environment}"


def complexity_line(level: Level, rules: PlanningRules) -> str:
    info = rules.complexity.levels[level]
    return (
        f"{LEVEL_ICON[level]} {level.label} complexity · downtime {info.downtime} · "
        f"testing: {', '.join(info.testing)}"
    )


def requirement_lines(req: ApprovalRequirement) -> list[str]:
    if not (req.approvers or req.reviews or req.rehearsal_required):
        return ["No approval required"]
    lines = []
    if req.approvers:
        lines.append("Approval: " + " + ".join(display_name(r) for r in req.approvers))
    if req.reviews:
        lines.append("Reviews: " + " + ".join(display_name(r) for r in req.reviews))
    if req.documentation:
        lines.append("Documentation: " + " + ".join(display_name(d) for d in req.documentation))
    if req.rehearsal_required:
        lines.append("A passing rehearsal report is required before it is approved")
    return lines


def shown(listing: Listing[str]) -> Iterable[str]:
    """A listing's lines, and what a stored plan left out of them."""
    more = [f"…and {listing.more} more (all of them: `migrate-bot plan`)"] if listing.more else []
    return itertools.chain(listing.lines, more)


def _hazard_text(hazard: HazardLine) -> str:
    return hazard.text + (f"\n    → {hazard.alternative}" if hazard.alternative else "")


def _sections(view: PlanView) -> list[tuple[str, Iterable[str]]]:
    """Each section's name and lines; a printed plan's long lists are made as they are written."""
    s, meta, rules = view.summary, view.meta, view.rules
    tables = s.tables.joined()
    hazards = Listing(MappedLines(s.hazards.lines, _hazard_text), s.hazards.total)
    sections: list[tuple[str, Iterable[str]]] = [
        (
            "Summary",
            [
                complexity_line(s.complexity, rules),
                f"{s.statements} statement(s); strongest lock: {s.strongest_lock.value}",
                f"Tables: {tables or 'none'}",
                f"Target: {s.target}",
                f"SHA-256: {view.migration.sha256}",
            ],
        ),
        ("Hazards", shown(hazards) if hazards.total else ["None found"]),
        ("Why this complexity", shown(s.reasons)),
        ("Statements", shown(s.operations)),
        ("Rollback", shown(s.rollback)),
        ("Required approvals", requirement_lines(view.requirement)),
    ]
    if meta and meta.status:
        sections.append(("Approvals", approval_lines(meta.status)))
    if s.rollback_hazards.total:
        sections.append(("Rollback hazards", shown(s.rollback_hazards)))
    for section, items in rules.checklist.items():
        sections.append((f"Checklist: {section}", [f"[ ] {item}" for item in items]))
    return sections


def render_text(view: PlanView, *, with_sql: bool = True) -> str:
    return "".join(text_pieces(view, with_sql=with_sql))


def text_pieces(view: PlanView, *, with_sql: bool = True) -> Iterator[str]:
    """The plan as text in pieces of about a megabyte: a 10 MB file's plan is 100 MB of text, which the CLI
    writes (and redacts) piece by piece instead of holding it whole."""
    return _in_pieces(_text_lines(view, with_sql))


def _text_lines(view: PlanView, with_sql: bool) -> Iterator[str]:
    yield title(view)
    yield "=" * len(title(view))
    if view.meta:
        yield f"State: {view.meta.state_label} · author {view.meta.author}"
    for name, lines in _sections(view):
        yield from ("", f"{name}:")
        yield from (f"  {line}" for line in lines)
    if with_sql:
        yield from ("", "Migration SQL:", view.migration.sql.rstrip(), "", "Rollback SQL:")
        yield view.rollback_sql.rstrip()


def render_markdown(view: PlanView) -> str:
    return "".join(markdown_pieces(view))


def markdown_pieces(view: PlanView) -> Iterator[str]:
    """The plan as Markdown, in pieces as ``text_pieces``."""
    return _in_pieces(_markdown_lines(view))


def _markdown_lines(view: PlanView) -> Iterator[str]:
    yield f"## {title(view)}"
    if view.meta:
        yield f"State: **{view.meta.state_label}** · author {view.meta.author}"
    for name, lines in _sections(view):
        yield from ("", f"### {name}", "")
        yield from (f"- {line}" for line in lines)
    yield from ("", "### Migration SQL", "", "```sql", view.migration.sql.rstrip(), "```")
    yield from ("", "### Rollback SQL", "", "```sql", view.rollback_sql.rstrip(), "```")


def _in_pieces(lines: Iterable[str]) -> Iterator[str]:
    """Lines, each ended by a newline, gathered into pieces of about ``PIECE_CHARS``; a longer line (a
    file's SQL: 24 MB for a 10 MB file's generated rollback) cut into pieces of that size."""
    parts: list[str] = []
    size = 0
    for line in lines:
        for start in range(0, len(line), PIECE_CHARS):
            parts.append(line[start : start + PIECE_CHARS])
            size += min(len(line) - start, PIECE_CHARS)
            if size >= PIECE_CHARS:
                yield "".join(parts)
                parts, size = [], 0
        parts.append("\n")
        size += 1
    yield "".join(parts)
