"""Timeline exports of plans that really ran: every section of the report checked against what the store
holds, the JSON against its schema, the CSV row by row, the chart's size and marks read back from the PNG,
the same bytes on every run, and the target's password in none of them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import matplotlib.dates as mdates
import pytest
from PIL import Image
from sqlalchemy import select

from bot.export import Format, export_files, gather
from bot.export.chart import DPI, HEIGHT, MARKS, WIDTH, draw, marks
from bot.export.markdown import cell
from bot.export.story import DECISIONS, Story
from bot.export.text import utc
from bot.redact import redact, redact_value
from storage.models import ApprovalRecord, EventRecord, IncidentRecord, SampleRecord, StepRecord
from tests.conftest import REPO
from tests.export.conftest import PASSWORD, START, Ran

SCHEMA = json.loads((REPO / "bot" / "export" / "timeline.schema.json").read_text())


def masked(text: str) -> str:
    """What an export shows of stored text: the target's password masked."""
    return redact(text, (PASSWORD,))


def story(ran: Ran) -> Story:
    with ran.services.db.session() as session:
        return gather(session, ran.plan_id, ran.services.config)


def exported(ran: Ran) -> dict[str, bytes]:
    return {f.name: f.content for fmt in Format for f in export_files(story(ran), fmt)}


def stored(ran: Ran, model: type) -> list:  # type: ignore[type-arg]
    with ran.services.db.session() as session:
        rows = session.scalars(select(model).order_by(model.id)).all()
        session.expunge_all()
        return list(rows)


def section(report: str, title: str) -> str:
    """The text of a report's ``## title`` section."""
    start = report.index(f"## {title}\n")
    end = report.find("\n## ", start + 1)
    return report[start : end if end >= 0 else len(report)]


def report(ran: Ran) -> str:
    return exported(ran)[f"plan-{ran.plan_id}-timeline.md"].decode()


def test_the_rolled_back_plan_s_report_tells_what_the_store_holds(rolled_back: Ran) -> None:
    text = report(rolled_back)
    summary = section(text, "Summary")
    events = stored(rolled_back, EventRecord)
    rolled = next(e for e in events if e.kind == "rolled_back")
    first_bad = stored(rolled_back, SampleRecord)[6]  # six healthy samples, then the errors
    assert first_bad.verdict == "bad"
    for line in (
        "| Outcome | rolled back |",
        "| Severity | P2 |",
        "| Complexity | Low |",
        "| Environment | production |",
        f"| Started | {utc(START)} |",
        f"| Ended | {utc(rolled.at)} |",
        f"| Duration of impact | 3 min 30 s ({utc(first_bad.taken_at)} → {utc(rolled.at)}) |",
    ):
        assert line in summary, (line, summary)
    incident = stored(rolled_back, IncidentRecord)[0]
    assert incident.acknowledged_at is not None
    paged = f"On Call (U0ONCALL) at {utc(incident.created_at)} for incident #1"
    assert f"{paged}; answered by U0ONCALL 2 min 0 s later" in summary

    approvals = section(text, "Approvals")
    for approval in stored(rolled_back, ApprovalRecord):
        row = next(line for line in approvals.splitlines() if f"| {approval.user_id} |" in line)
        assert approval.sha256 in row and approval.rollback_sha256 in row and row.endswith("| yes |")
    assert "break-glass: QA signed on the phone" in approvals

    assert "No rehearsal was run." in section(text, "Rehearsal")

    steps = section(text, "Steps").splitlines()[4:]
    records = stored(rolled_back, StepRecord)
    assert len(steps) == len(records)
    for line, step in zip(steps, records, strict=True):
        assert f"| {step.state} |" in line and step.operator in line
    assert "Restore the application (attempt 2)" in steps[-2] and "| failed |" in steps[-3]
    assert "Roll back" in steps[-1]

    window = section(text, "Monitor window")
    assert "| error_rate | 0.2 | 7 | +6.8 points |" in window and "| latency | 100 | 130 | +30% |" in window
    assert (
        "; stopped: rolled back: bookmarks break sign-in" in window and "14 samples (6 ok, 8 bad)" in window
    )
    assert (
        f"![Error rate and latency over the window (UTC)](plan-{rolled_back.plan_id}-timeline.png)" in window
    )

    incidents = section(text, "Incidents")
    assert "| #1 | breach | P2 |" in incidents and "U0ONCALL at 02:07:00" in incidents
    assert "U0TL at 02:09:00: rolled back; errors back to normal" in incidents
    assert f"| {utc(incident.created_at)} | #1 | 0 | On Call | U0ONCALL | opened |" in incidents

    decisions = section(text, "Decisions").splitlines()[4:]
    chosen = [e for e in events if e.kind in DECISIONS]
    assert [line.split(" | ")[1] for line in decisions] == [e.actor for e in chosen]
    assert any("| U0TL | rolling back |" in line for line in decisions)

    timeline = section(text, "Timeline").splitlines()[4:]
    assert len(timeline) == len(events)
    in_order = sorted(events, key=lambda e: (e.at, e.id))
    for line, event in zip(timeline, in_order, strict=True):
        said = (
            f"| {utc(event.at)} | {cell(event.actor)} | {cell(event.kind)} | {cell(masked(event.message))} |"
        )
        assert line == said


def test_the_completed_plan_s_report_says_nothing_went_wrong(completed: Ran) -> None:
    text = report(completed)
    summary = section(text, "Summary")
    assert (
        "| Outcome | completed |" in summary and "| Severity | none (no incident of a severity) |" in summary
    )
    assert "| Duration of impact | none: no bad sample and no incident |" in summary
    assert "| Paged | nobody |" in summary
    samples = stored(completed, SampleRecord)
    assert {s.verdict for s in samples} == {"ok"}
    window = section(text, "Monitor window")
    assert f"; all clear. {len(samples)} samples ({len(samples)} ok)." in window
    assert "None." in section(text, "Incidents")
    all_clear = next(e for e in stored(completed, EventRecord) if e.kind == "completed")
    assert f"| Ended | {utc(all_clear.at)} |" in summary


@pytest.mark.parametrize("scenario", ["rolled_back", "completed"])
def test_the_json_validates_against_its_schema_and_holds_every_event_and_sample(
    scenario: str, request: pytest.FixtureRequest
) -> None:
    ran: Ran = request.getfixturevalue(scenario)
    document = json.loads(exported(ran)[f"plan-{ran.plan_id}-timeline.json"])
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)
    events = sorted(stored(ran, EventRecord), key=lambda e: (e.at, e.id))
    said = [(e["actor"], e["kind"], e["message"]) for e in document["events"]]
    assert said == [(e.actor, e.kind, masked(e.message)) for e in events]
    samples = stored(ran, SampleRecord)
    assert [s["values"] for s in document["monitor"]["samples"]] == [s.values for s in samples]
    assert document["plan"]["id"] == ran.plan_id and document["timezone"] == "UTC"
    if scenario == "completed":
        assert document["summary"]["severity"] is None and document["summary"]["impact"] is None
        return
    assert document["summary"]["severity"] == "P2" and document["summary"]["impact"]["seconds"] == 210
    assert document["incidents"][0]["pages"][0]["users"] == ["U0ONCALL"]


def test_the_csv_has_one_row_per_event_in_utc(rolled_back: Ran) -> None:
    content = exported(rolled_back)[f"plan-{rolled_back.plan_id}-timeline.csv"].decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    events = sorted(stored(rolled_back, EventRecord), key=lambda e: (e.at, e.id))
    assert len(rows) == len(events)
    for row, event in zip(rows, events, strict=True):
        assert (row["actor"], row["kind"], row["message"]) == (event.actor, event.kind, masked(event.message))
        assert row["at_utc"].endswith("Z") and json.loads(row["data"]) == redact_value(
            event.data, (PASSWORD,)
        )


def test_every_export_is_the_same_bytes_every_time(rolled_back: Ran) -> None:
    assert exported(rolled_back) == exported(rolled_back)


@pytest.mark.parametrize("scenario", ["rolled_back", "completed"])
def test_the_password_is_in_no_export_whatever_the_store_kept(
    scenario: str, request: pytest.FixtureRequest
) -> None:
    ran: Ran = request.getfixturevalue(scenario)
    steps = stored(ran, StepRecord)
    # kept as given: a runbook command's output, a reason
    assert any(PASSWORD in json.dumps(s.output) for s in steps)
    assert any(PASSWORD in (a.reason or "") for a in stored(ran, ApprovalRecord))
    # masked when written, the target's password being known by its value: a failed step's error, events
    assert any("password ***" in (s.error or "") for s in steps)
    assert not any(PASSWORD in e.message + json.dumps(e.data) for e in stored(ran, EventRecord))
    if scenario == "rolled_back":
        assert any("password ***" in e.message for e in stored(ran, EventRecord) if e.kind == "rolled_back")
    for name, content in exported(ran).items():
        assert PASSWORD.encode() not in content, name
        if name.endswith((".md", ".json", ".csv")):
            assert "password ***" in content.decode(), name


def test_the_chart_has_its_size_and_a_mark_where_each_happened(rolled_back: Ran) -> None:
    told = story(rolled_back)
    png = exported(rolled_back)[f"plan-{rolled_back.plan_id}-timeline.png"]
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    fig = draw(told)
    lane = fig.axes[-1]
    found = marks(told)
    assert {kind: len(times) for kind, times in found.items()} == {
        "apply": 1,
        "breach": 8,
        "page": 1,
        "acknowledged": 1,
        "rollback": 1,
    }
    for row, (kind, times) in enumerate(found.items()):
        colour = tuple(int(MARKS[kind][i : i + 2], 16) for i in (1, 3, 5))
        y = round(HEIGHT - lane.transData.transform((0, row))[1])
        for moment in times:
            x = round(lane.transData.transform((mdates.date2num(moment), row))[0])
            near = [image.getpixel((x + dx, y)) for dx in range(-2, 3)]
            assert colour in near, (kind, moment, near)
        away = round(lane.transData.transform((mdates.date2num(START), row))[0]) - 40  # before anything
        assert image.getpixel((away, y)) != colour
    assert DPI * fig.get_size_inches()[0] == WIDTH


def test_exporting_loads_no_chart_library_until_a_chart_is_drawn() -> None:
    code = "import sys, bot.export, bot.delivery, bot.cli; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(REPO))
    assert result.stdout.strip() == "False", result.stderr
