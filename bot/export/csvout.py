"""The timeline as CSV for spreadsheets: one row per event, its data as compact JSON."""

from __future__ import annotations

import csv
import io
import json

from bot.export.story import Story
from bot.export.text import iso

COLUMNS = ("at_utc", "actor", "kind", "message", "data")


def render_csv(story: Story) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for event in story.events:
        data = json.dumps(event.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        writer.writerow((iso(event.at), event.actor, event.kind, event.message, data))
    return out.getvalue()
