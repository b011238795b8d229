"""The timeline as JSON for incident tools: the document ``timeline.schema.json`` (beside this module)
describes. ``VERSION`` changes when a field changes meaning or goes away; new fields keep it."""

from __future__ import annotations

import json
from typing import Any

from bot.export.story import Story
from bot.export.text import iso

SCHEMA_ID = "urn:migrate-bot:timeline:1"
VERSION = 1


def document(story: Story) -> dict[str, Any]:
    window = story.window
    impact = story.impact
    return {
        "schema": SCHEMA_ID,
        "version": VERSION,
        "timezone": "UTC",
        "plan": {
            "id": story.plan_id,
            "file": story.file_name,
            "environment": story.environment,
            "complexity": story.complexity,
            "state": story.state,
            "author": story.author,
            "created_at": iso(story.created_at),
            "sha256": story.sha256,
            "rollback_sha256": story.rollback_sha256,
        },
        "summary": {
            "outcome": story.state,
            "severity": story.severity,
            "started_at": iso(story.started_at),
            "ended_at": iso(story.ended_at),
            "impact": None
            if impact is None
            else {
                "started_at": iso(impact[0]),
                "ended_at": iso(impact[1]),
                "seconds": (impact[1] - impact[0]).total_seconds() if impact[1] else None,
            },
        },
        "approvals": [
            {
                "slot": a.slot,
                "role": a.role,
                "user": a.user,
                "at": iso(a.at),
                "via": a.via,
                "reason": a.reason,
                "sha256": a.sha256,
                "rollback_sha256": a.rollback_sha256,
                "binds_plan": a.binds_plan,
            }
            for a in story.approvals
        ],
        "rehearsals": [
            {
                "id": r.id,
                "state": r.state,
                "operator": r.operator,
                "started_at": iso(r.started_at),
                "finished_at": iso(r.finished_at),
                "seconds": r.seconds,
                "migration_seconds": r.migration_seconds,
                "binds_plan": r.binds_plan,
                "error": r.error,
            }
            for r in story.rehearsals
        ],
        "steps": [
            {
                "step": s.step,
                "attempt": s.attempt,
                "state": s.state,
                "operator": s.operator,
                "started_at": iso(s.started_at),
                "finished_at": iso(s.finished_at),
                "seconds": s.seconds,
                "summary": s.summary,
                "error": s.error,
            }
            for s in story.steps
        ],
        "monitor": None
        if window is None
        else {
            "state": window.state,
            "opened_at": iso(window.opened_at),
            "early_until": iso(window.early_until),
            "ends_at": iso(window.ends_at),
            "decision": window.decision,
            "baseline": window.baseline,
            "worst": window.worst,
            "samples": [
                {"at": iso(s.at), "values": s.values, "verdict": s.verdict, "rules": s.rules}
                for s in window.samples
            ],
        },
        "thresholds": {
            "normal_error_rate_pct": story.thresholds.normal_error_rate_pct,
            "rollback_error_rate_pct": story.thresholds.rollback_error_rate_pct,
            "rollback_latency_pct": story.thresholds.rollback_latency_pct,
            "error_rate_pct": story.thresholds.error_rate_pct,
            "latency_pct": story.thresholds.latency_pct,
        },
        "incidents": [
            {
                "id": i.id,
                "kind": i.kind,
                "severity": i.severity,
                "state": i.state,
                "reason": i.reason,
                "opened_by": i.opened_by,
                "opened_at": iso(i.opened_at),
                "acknowledged_by": i.acknowledged_by,
                "acknowledged_at": iso(i.acknowledged_at),
                "resolved_by": i.resolved_by,
                "resolved_at": iso(i.resolved_at),
                "resolution": i.resolution,
                "pages": [
                    {"at": iso(p.at), "level": p.level, "role": p.role, "users": p.users, "why": p.why}
                    for p in i.pages
                ],
            }
            for i in story.incidents
        ],
        "decisions": [
            {"at": iso(e.at), "actor": e.actor, "kind": e.kind, "message": e.message} for e in story.decisions
        ],
        "events": [
            {"at": iso(e.at), "actor": e.actor, "kind": e.kind, "message": e.message, "data": e.data}
            for e in story.events
        ],
    }


def render_json(story: Story) -> str:
    return json.dumps(document(story), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
