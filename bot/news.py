"""What a plan's thread is told when something happens to it (bot markup: see ``bot.markup``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.markup import mention, quote
from storage.models import PlanRecord

if TYPE_CHECKING:
    from bot.approvals import Outcome


def decision(outcome: Outcome) -> str:
    plan, status, who = outcome.plan, outcome.status, mention(outcome.actor)
    author = mention(plan.author)
    note = quote(outcome.note or "")
    if outcome.kind == "rejection":
        return f"⛔ {who} rejected plan #{plan.id}: {note}\n{author}, plan a changed migration to try again."
    if outcome.kind == "changes_requested":
        return f"✏️ {who} requests changes: {note}\n{author}, plan the changed file to replace this plan."
    assert outcome.slot is not None
    how = f" (break-glass: {note})" if outcome.note else ""
    text = (
        f"✅ {who} approved as {outcome.slot.label}{how} "
        f"({len(status.given)} of {len(status.slots)}) for SHA-256 `{plan.sha256[:12]}`"
        + (f" at commit `{plan.source_commit[:12]}`" if plan.source_commit else "")
    )
    if outcome.approved:
        text += f"\n🎉 Plan #{plan.id} is *approved*, every sign-off is in. {author}"
    elif not status.missing and status.rehearsal_missing:
        text += (
            f"\nEvery sign-off is in; plan #{plan.id} is approved once a rehearsal of these exact bytes "
            f"passes (`/migrate rehearse {plan.id}`). {author}"
        )
    return text


def expired(plan: PlanRecord) -> str:
    return (
        f"⌛ Plan #{plan.id} expired; its approvals no longer count. "
        f"{mention(plan.author)}, plan it again to continue."
    )


def superseded(old: PlanRecord, new: PlanRecord) -> str:
    changed = "the migration changed" if old.sha256 != new.sha256 else "its rollback changed"
    return (
        f"Superseded by plan #{new.id} ({changed}), planned by {mention(new.author)}; "
        "approvals given here no longer count."
    )
