"""How a step reads in the plan's thread and on its message (bot markup, see ``bot.markup``)."""

from __future__ import annotations

from datetime import datetime

from bot.approvals import passing_rehearsal
from bot.config import BotConfig
from bot.execution.steps import StepKind, StepState, procedure_name, procedure_steps
from bot.markup import quote
from bot.states import PlanState
from bot.summary import PlanSummary
from storage.models import PlanRecord, StepRecord, aware

# Slack shows this much of a failed step's error; the rest is on the timeline.
ERROR_SHOWN = 500


def _seconds(step: StepRecord, now: datetime) -> float:
    if step.started_at is None:
        return 0.0
    end = aware(step.finished_at) if step.finished_at else now
    return max(0.0, (end - aware(step.started_at)).total_seconds())


def step_line(step: StepRecord, now: datetime) -> str:
    state, label = StepState(step.state), StepKind(step.step).label
    took = _seconds(step, now)
    head = f"{state.icon} *{label}*"
    if step.attempt > 1:
        head += f" (attempt {step.attempt})"
    if state is StepState.RUNNING:
        note = step.output.get("progress")
        return f"{head} · running for {took:.0f} s" + (f" · {quote(note)}" if note else "")
    if state is StepState.DONE:
        summary = step.output.get("summary")
        return f"{head} · done in {took:.1f} s" + (f" · {quote(summary)}" if summary else "")
    if state is StepState.FAILED:
        error = (step.error or "failed")[:ERROR_SHOWN]
        return f"{head} · failed after {took:.1f} s: `{quote(error)}`"
    if state is StepState.INTERRUPTED:
        return f"{head} · interrupted: the bot stopped while it ran; it will not run again by itself"
    return f"{head} · waiting"


def run_lines(config: BotConfig, plan: PlanRecord, summary: PlanSummary) -> list[str]:
    """The run as the plan's message shows it: each step of its procedure with its latest state, then any
    rollback or restore; nothing before an approved plan's first step. ``summary``: the plan's, which
    the caller has drawn already."""
    if not plan.steps and PlanState(plan.state) is not PlanState.APPROVED:
        return []
    name = procedure_name(config, plan.environment, summary, plan.procedure)
    latest = {StepKind(step.step): step for step in plan.steps}
    kinds = procedure_steps(config, name) + [k for k in (StepKind.ROLLBACK, StepKind.RESTORE) if k in latest]
    lines = [f"Procedure: {name.replace('_', '-')}"]
    for kind in kinds:
        step = latest.get(kind)
        state = StepState(step.state) if step else StepState.PENDING
        lines.append(f"{state.icon} {kind.label}" + (f" · {state.value}" if step else ""))
    return lines


# Checklist items a step's evidence ticks (the rest are ticked by a named person): item -> (step, test).
EVIDENCE: dict[str, tuple[StepKind, str]] = {
    "Full database backup completed": (StepKind.BACKUP, "path"),
    "Backup integrity verified": (StepKind.VERIFY_BACKUP, "entries"),
    "Backup restoration tested": (StepKind.VERIFY_BACKUP, "restore_check"),
    "Point-in-time recovery (PITR) enabled": (StepKind.BACKUP, "pitr"),
}


def ticked(plan: PlanRecord) -> dict[str, str]:
    """Checklist items the run's own evidence ticks, and those the passing rehearsal of these exact bytes
    proves, each with that evidence."""
    done = {StepKind(s.step): s.output for s in plan.steps if s.state == StepState.DONE}
    rehearsal = passing_rehearsal(plan)
    found = dict(rehearsal.report.get("proves", {})) if rehearsal else {}
    for item, (kind, key) in EVIDENCE.items():
        output = done.get(kind, {})
        if key == "pitr":
            if output.get("pitr", {}).get("possible"):
                found[item] = output["pitr"]["evidence"]
        elif key in output:
            found[item] = output.get("summary", "")
    return found
