"""A timeline export owed through the outbox: asked for twice before it is sent, uploaded once."""

from __future__ import annotations

from bot.delivery import Deliverer
from bot.notifier import ConsoleNotifier
from bot.plans import get_plan
from tests.export.conftest import Ran


def test_an_export_asked_for_twice_before_it_is_sent_is_uploaded_once(completed: Ran) -> None:
    services = completed.services
    with services.db.session() as session:
        plan = get_plan(session, completed.plan_id)
        first = services.outbox.file(session, plan, "md", by="U0TL")
        again = services.outbox.file(session, plan, "md", by="U0PO")
        other = services.outbox.file(session, plan, "csv", by="U0PO")
    assert first == again != other
    said: list[str] = []
    notifier = ConsoleNotifier(said.append)
    Deliverer(db=services.db, config=services.config, notifier=notifier, clock=completed.clock).deliver_due()
    uploads = [line for line in said if "📎" in line]
    stem = f"plan-{plan.id}-timeline"
    assert len(uploads) == 2, said
    assert f"(md), asked for by @U0TL: {stem}.md (" in uploads[0] and f"{stem}.png (" in uploads[0]
    assert f"(csv), asked for by @U0PO: {stem}.csv (" in uploads[1]
