"""The report people read after a migration: what happened, who decided what, and the whole timeline."""

from __future__ import annotations

from collections.abc import Sequence

from bot.export.story import Incident, Story
from bot.export.text import duration, number, utc
from bot.monitor.rules import ERROR_RATE, HEALTH, LATENCY, degradation_pct
from bot.rules import display_name


def cell(text: object) -> str:
    """Anything as one Markdown table cell: no raw HTML, no column breaks, one line."""
    shown = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return shown.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(story: Story, *, chart: str | None) -> str:
    """The report; ``chart`` is the file name of its chart beside it, linked when there is a window."""
    title = f"# Timeline of plan #{story.plan_id}: `{cell(story.file_name)}` → {cell(story.environment)}"
    lines = [title, "", "All times are UTC. Drawn from the plan's stored events and monitor samples.", ""]
    for section in (_summary, _approvals, _rehearsals, _steps):
        lines += [*section(story), ""]
    lines += [*_window(story, chart), ""]
    lines += [*_incidents(story), ""]
    lines += ["## Decisions", ""]
    rows = [(utc(e.at), e.actor, _words(e.kind), e.message) for e in story.decisions]
    lines += (table(["At (UTC)", "Who", "Decision", "What"], rows) if rows else ["None recorded."]) + [""]
    lines += ["## Timeline", ""]
    rows = [(utc(e.at), e.actor, e.kind, e.message) for e in story.events]
    lines += table(["At (UTC)", "Actor", "Kind", "Event"], rows)
    return "\n".join(lines) + "\n"


def _summary(story: Story) -> list[str]:
    impact = story.impact
    if impact is None:
        impact_text = "none: no bad sample and no incident"
    elif impact[1] is None:
        impact_text = f"since {utc(impact[0])}, still going on"
    else:
        took = (impact[1] - impact[0]).total_seconds()
        impact_text = f"{duration(took)} ({utc(impact[0])} → {utc(impact[1])})"
    rows = [
        ("Plan", f"#{story.plan_id} `{story.file_name}` by {story.author}"),
        ("Environment", story.environment),
        ("Complexity", story.complexity_label),
        ("Outcome", story.outcome),
        ("Severity", story.severity or "none (no incident of a severity)"),
        ("Started", utc(story.started_at)),
        ("Ended", utc(story.ended_at) if story.ended_at else "not yet"),
        ("Duration of impact", impact_text),
        ("Paged", _paged(story) or "nobody"),
        ("Migration SHA-256", story.sha256),
        ("Rollback SHA-256", story.rollback_sha256),
    ]
    return ["## Summary", "", *table(["", ""], rows)]


def _paged(story: Story) -> str:
    """Each page, and when its incident was acknowledged (how long after the page)."""
    incidents = {i.id: i for i in story.incidents}
    parts = []
    for page in story.pages:
        incident = incidents[page.incident]
        who = ", ".join(page.users) or "nobody holds the role"
        text = f"{display_name(page.role)} ({who}) at {utc(page.at)} for incident #{page.incident}"
        if incident.acknowledged_at and incident.acknowledged_at >= page.at:
            took = (incident.acknowledged_at - page.at).total_seconds()
            text += f"; answered by {incident.acknowledged_by} {duration(took)} later"
        else:
            text += "; not acknowledged"
        parts.append(text)
    return "\n".join(parts)


def _section(title: str, empty: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A heading, then the table of ``rows``, or ``empty`` when there are none."""
    return [f"## {title}", "", *(table(headers, rows) if rows else [empty])]


def _approvals(story: Story) -> list[str]:
    rows = [
        (
            display_name(a.slot),
            a.user,
            utc(a.at),
            a.via + (f" (break-glass: {a.reason})" if a.reason else ""),
            a.sha256,
            a.rollback_sha256,
            "yes" if a.binds_plan else "no: other bytes",
        )
        for a in story.approvals
    ]
    headers = ["Sign-off", "By", "At (UTC)", "Via", "Migration SHA-256", "Rollback SHA-256", "These bytes"]
    return _section("Approvals", "No sign-off was recorded.", headers, rows)


def _rehearsals(story: Story) -> list[str]:
    rows = [
        (
            f"#{r.id}",
            r.state,
            r.operator,
            utc(r.started_at),
            duration(r.seconds),
            duration(r.migration_seconds),
            "yes" if r.binds_plan else "no: other bytes",
            r.error or "",
        )
        for r in story.rehearsals
    ]
    headers = ["Rehearsal", "Result", "By", "Started (UTC)", "Took", "Migration took", "These bytes", "Error"]
    return _section("Rehearsal", "No rehearsal was run.", headers, rows)


def _steps(story: Story) -> list[str]:
    rows = [
        (
            s.label + (f" (attempt {s.attempt})" if s.attempt > 1 else ""),
            s.operator,
            utc(s.started_at, date=False),
            utc(s.finished_at, date=False),
            duration(s.seconds),
            s.state,
            s.error or s.summary or "",
        )
        for s in story.steps
    ]
    headers = ["Step", "By", "Started (UTC)", "Finished (UTC)", "Took", "Outcome", "Detail"]
    return _section("Steps", "Nothing ran.", headers, rows)


def _window(story: Story, chart: str | None) -> list[str]:
    head = ["## Monitor window", ""]
    window = story.window
    if window is None:
        return [*head, "No monitor window: the migration was not applied with the window on."]
    verdicts = [s.verdict for s in window.samples]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("ok", "bad", "unknown") if v in verdicts)
    state = _words(window.state)
    lines = [
        *head,
        f"Opened {utc(window.opened_at)}, automatic rollbacks until {utc(window.early_until)}, "
        f"to end {utc(window.ends_at)}; {state}"
        + (f": {window.decision}" if window.decision and window.decision != state else "")
        + f". {len(window.samples)} samples"
        + (f" ({counts})" if counts else "")
        + ".",
        "",
    ]
    rows = []
    for metric in sorted(set(window.baseline) | set(window.worst)):
        base, worst = window.baseline.get(metric), window.worst.get(metric)
        rows.append((metric, number(base), number(worst), _change(metric, base, worst)))
    lines += table(["Metric", "Baseline", "Worst", "Change"], rows) if rows else ["No value was read."]
    limits = story.thresholds
    lines += [
        "",
        f"Thresholds (the policy when exported): error rate normal below {limits.normal_error_rate_pct:g}%, "
        + ", ".join(f"{s} above {v:g}%" for s, v in sorted(limits.error_rate_pct.items()))
        + f"; rolled back by itself above {limits.rollback_error_rate_pct:g}% in the first minutes; latency "
        + ", ".join(f"{s} over {v:g}% slower" for s, v in sorted(limits.latency_pct.items()))
        + f"; rolled back by itself over {limits.rollback_latency_pct:g}% slower in the first minutes.",
    ]
    if chart and window.samples:
        lines += ["", f"![Error rate and latency over the window (UTC)]({chart})"]
    return lines


def _change(metric: str, base: float | None, worst: float | None) -> str:
    if base is None or worst is None:
        return ""
    if metric == LATENCY:
        slower = degradation_pct(worst, base)
        return f"{slower:+.0f}%" if slower is not None else ""
    if metric == HEALTH:
        return "failing" if worst < 1 else "passing"
    if metric == ERROR_RATE:
        return f"{worst - base:+.3g} points"
    return f"{worst - base:+.4g}"


def _incidents(story: Story) -> list[str]:
    head = ["## Incidents", ""]
    if not story.incidents:
        return [*head, "None."]
    rows = [_incident_row(i) for i in story.incidents]
    headers = ["Incident", "Kind", "Severity", "Opened (UTC)", "By", "Reason", "Acknowledged", "Resolved"]
    lines = [*head, *table(headers, rows), "", "### Pages", ""]
    pages = [
        (utc(p.at), f"#{p.incident}", p.level, display_name(p.role), ", ".join(p.users), _words(p.why))
        for p in story.pages
    ]
    lines += table(["At (UTC)", "Incident", "Level", "Role", "Who", "Why"], pages) if pages else ["Nobody."]
    return lines


def _incident_row(incident: Incident) -> tuple[object, ...]:
    acknowledged = (
        f"{incident.acknowledged_by} at {utc(incident.acknowledged_at, date=False)}"
        if incident.acknowledged_at
        else "no"
    )
    resolved = (
        f"{incident.resolved_by} at {utc(incident.resolved_at, date=False)}: {incident.resolution}"
        if incident.resolved_at
        else incident.state
    )
    return (
        f"#{incident.id}",
        incident.kind,
        incident.severity or "question",
        utc(incident.opened_at),
        incident.opened_by,
        incident.reason,
        acknowledged,
        resolved,
    )


def _words(key: str) -> str:
    return key.replace("_", " ")
