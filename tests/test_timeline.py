"""The timeline stores no secret: every field of an event is redacted before it is written."""

from pathlib import Path

from bot import timeline
from storage.db import Database
from storage.models import PlanRecord


def _plan(db: Database) -> int:
    with db.session() as s:
        plan = PlanRecord(
            environment="production",
            file_name="070_roles.sql",
            file_path="migrations/070_roles.sql",
            sql="SELECT 1;",
            sha256="0" * 64,
            rollback_sql="SELECT 1;",
            rollback_sha256="0" * 64,
            rollback={},
            analysis={},
            complexity="Low",
            state="pending",
            author="U1",
        )
        s.add(plan)
        s.flush()
        return plan.id


def test_record_redacts_message_actor_kind_and_nested_data(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/state.db")
    db.upgrade()
    plan_id = _plan(db)
    data = {
        "comment": "use ALTER ROLE app PASSWORD 'hunter2' instead",
        "steps": [{"reply": "https://hooks.slack.com/commands/T1/2/abc"}, ["postgresql://u:pw@h/db", 3]],
        "sha256": "f81d42ea",
        "count": 2,
        "ok": True,
    }
    with db.session() as s:
        timeline.record(
            s,
            plan_id=plan_id,
            actor="U1 via xoxb-1234-abcd",
            kind="comment PGPASSWORD=abc123",
            message="changes requested: CREATE ROLE r LOGIN PASSWORD $$s3cret$$;",
            data=data,
        )
    with db.session() as s:
        (event,) = timeline.events(s, plan_id=plan_id)
        assert event.actor == "U1 via xoxb-***"
        assert event.kind == "comment PGPASSWORD=***"
        assert event.message == "changes requested: CREATE ROLE r LOGIN PASSWORD '***';"
        assert event.data == {
            "comment": "use ALTER ROLE app PASSWORD '***' instead",
            "steps": [{"reply": "https://hooks.slack.com/***"}, ["postgresql://u:***@h/db", 3]],
            "sha256": "f81d42ea",
            "count": 2,
            "ok": True,
        }
    assert data["comment"] == "use ALTER ROLE app PASSWORD 'hunter2' instead"  # the caller's dict is its own
