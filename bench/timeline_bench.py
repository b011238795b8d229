"""How long a timeline export takes for a long window: one plan with 3,600 samples (an hour at 1 s, or
30 hours at the default 30 s), each also an event on its timeline, an incident with its pages.

    python bench/timeline_bench.py [--samples N]

Prints the time to gather the story from the store and to draw each format, and each file's size.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import parse_config
from bot.export import Format, export_files, gather
from storage.db import Database
from storage.models import (
    EventRecord,
    IncidentRecord,
    MonitorRecord,
    PageRecord,
    PlanRecord,
    SampleRecord,
)

START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
SHA = "0" * 64


def fill(db: Database, samples: int) -> int:
    """A plan applied at START whose window took ``samples`` samples, breached two thirds in."""
    with db.session() as session:
        plan = PlanRecord(
            environment="production",
            file_name="054_add_message_bookmarks.sql",
            file_path="/nowhere/054_add_message_bookmarks.sql",
            sql="SELECT 1;",
            sha256=SHA,
            rollback_sql="SELECT 1;",
            rollback_sha256=SHA,
            rollback={},
            analysis={},
            rollback_analysis=None,
            complexity="low",
            state="rolled_back",
            author="U0AUTHOR",
            created_at=START,
            updated_at=START,
        )
        session.add(plan)
        session.flush()
        monitor = MonitorRecord(
            plan_id=plan.id,
            state="stopped",
            baseline={"error_rate": {"value": 0.3, "detail": ""}, "latency": {"value": 100, "detail": ""}},
            worst={"error_rate": 7.2, "latency": 135},
            samples=samples,
            opened_at=START,
            early_until=START + timedelta(minutes=10),
            ends_at=START + timedelta(seconds=samples),
            created_at=START,
            updated_at=START,
        )
        session.add(monitor)
        session.flush()
        breach = samples * 2 // 3
        for i in range(samples):
            at = START + timedelta(seconds=i + 1)
            bad = i >= breach
            values = {"error_rate": (7 if bad else 0.3) + 0.1 * math.sin(i), "latency": 100 + 4 * math.sin(i)}
            verdict = "bad" if bad else "ok"
            rules = ["error rate 7.0% > 5%"] if bad else []
            session.add(
                SampleRecord(monitor_id=monitor.id, taken_at=at, values=values, verdict=verdict, rules=rules)
            )
            message = f"sample #{i + 1}: {verdict}: error_rate {values['error_rate']:g}"
            session.add(
                EventRecord(plan_id=plan.id, at=at, actor="bot", kind="monitor_sample", message=message)
            )
        opened = START + timedelta(seconds=breach + 2)
        incident = IncidentRecord(
            plan_id=plan.id,
            kind="breach",
            severity="P2",
            state="resolved",
            reason="error rate 7.0% > 5%",
            opened_by="migrate-bot",
            level=0,
            created_at=opened,
            updated_at=opened,
            acknowledged_by="U0ONCALL",
            acknowledged_at=opened + timedelta(minutes=3),
            resolved_by="U0TL",
            resolved_at=opened + timedelta(minutes=6),
            resolution="rolled back",
        )
        session.add(incident)
        session.flush()
        session.add(
            PageRecord(
                incident_id=incident.id, level=0, role="on_call", users=["U0ONCALL"], why="opened", at=opened
            )
        )
        return plan.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3600)
    samples = parser.parse_args().samples
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/state.db")
        db.upgrade()
        plan_id = fill(db, samples)
        config = parse_config({"environments": {"production": {"migrations_dir": tmp}}}, Path(tmp))
        started = time.perf_counter()
        with db.session() as session:
            story = gather(session, plan_id, config)
        took = time.perf_counter() - started
        print(f"{samples:,} samples, {len(story.events):,} events: gathered in {took:.2f} s")
        for fmt in Format:
            started = time.perf_counter()
            files = export_files(story, fmt)
            took = time.perf_counter() - started
            sizes = ", ".join(f"{f.name} {len(f.content) / 1e6:.2f} MB" for f in files)
            print(f"  {fmt.value:>4}: {took:.2f} s ({sizes})")


if __name__ == "__main__":
    main()
