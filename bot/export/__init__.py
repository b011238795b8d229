"""Timeline exports of a plan: the Markdown report with its chart, JSON, CSV and the chart alone.

``gather`` reads the plan's story from the store once; ``export_files`` turns it into the files of a
format, each a pure function of the story, so Slack, the CLI and the demo hand out the same bytes.
"""

from __future__ import annotations

from enum import StrEnum

from bot.export.chart import render_png
from bot.export.csvout import render_csv
from bot.export.jsonout import render_json
from bot.export.markdown import render_markdown
from bot.export.story import Story, gather
from bot.notifier import Attachment

__all__ = ["Format", "Story", "export_files", "gather"]


class Format(StrEnum):
    MD = "md"
    JSON = "json"
    CSV = "csv"
    PNG = "png"


def stem(plan_id: int) -> str:
    """The files' name before their extension."""
    return f"plan-{plan_id}-timeline"


def export_files(story: Story, fmt: Format, *, name: str | None = None) -> list[Attachment]:
    """The files of ``fmt``: the report comes with its chart, which it links by its name beside it."""
    base = name or stem(story.plan_id)
    what = f"plan #{story.plan_id} timeline"
    if fmt is Format.JSON:
        return [Attachment(f"{base}.json", render_json(story).encode(), f"{what} (JSON)")]
    if fmt is Format.CSV:
        return [Attachment(f"{base}.csv", render_csv(story).encode(), f"{what} (CSV, one row per event)")]
    if fmt is Format.MD and not (story.window and story.window.samples):  # nothing to draw: the report alone
        return [Attachment(f"{base}.md", render_markdown(story, chart=None).encode(), f"{what} (report)")]
    chart = Attachment(f"{base}.png", render_png(story), f"{what}: the monitor window (UTC)")
    if fmt is Format.PNG:
        return [chart]
    report = render_markdown(story, chart=chart.name).encode()
    return [Attachment(f"{base}.md", report, f"{what} (report)"), chart]
