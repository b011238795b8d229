"""The window as a picture: error rate and latency over time against the baseline and the policy's lines,
with the apply, each breach, page, acknowledgement and rollback marked on a lane of their own.

matplotlib is imported here only, when a chart is drawn (the bot starts without it), and only through
its object API with the Agg canvas: no pyplot state shared between the deliverer's threads. The figure's
size, margins, style and PNG metadata are fixed, so the same story gives the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.export.story import Story
from bot.monitor.rules import ERROR_RATE, LATENCY

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 1200, 800, 100
# The marks' lane, top to bottom, and their colours (drawn without antialiasing: exact in the PNG).
MARKS = {
    "apply": "#2ca02c",
    "breach": "#d62728",
    "page": "#ff7f0e",
    "acknowledged": "#1f77b4",
    "rollback": "#9467bd",
}
LINE, BASELINE = "#333333", "#7f7f7f"
# The severities' lines (P3: above the normal error rate).
LIMITS = {"P1": "#8c564b", "P2": "#bcbd22", "P3": "#17becf"}


def marks(story: Story) -> dict[str, list[datetime]]:
    """When each kind of mark happened: breaches are the samples that broke a rule."""
    samples = story.window.samples if story.window else []
    found = {
        "apply": [story.apply_at] if story.apply_at else [],
        "breach": [s.at for s in samples if s.verdict == "bad"],
        "page": [p.at for p in story.pages],
        "acknowledged": [i.acknowledged_at for i in story.incidents if i.acknowledged_at],
        "rollback": [e.at for e in story.events if e.kind == "rolling_back"],
    }
    return {kind: sorted(times) for kind, times in found.items()}


def draw(story: Story) -> Figure:
    """The chart as a matplotlib Figure (the PNG is ``render_png``); axes: error rate, latency, marks."""
    import matplotlib.style
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):  # whatever matplotlibrc the host has
        fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
        title = f"Plan #{story.plan_id} {story.file_name} → {story.environment}: the window after apply"
        fig.suptitle(title, fontsize=12)
        samples = story.window.samples if story.window else []
        if not samples:
            fig.text(0.5, 0.5, "No monitor samples: the window did not sample this plan.", ha="center")
            return fig
        errors, latency, lane = fig.subplots(
            3,
            1,
            sharex=True,
            gridspec_kw={
                "height_ratios": [3, 3, 1.6],
                "left": 0.11,
                "right": 0.78,
                "top": 0.92,
                "bottom": 0.08,
                "hspace": 0.12,
            },
        )
        _metric(errors, story, ERROR_RATE, "error rate (%)")
        _metric(latency, story, LATENCY, "latency")
        _lane(lane, story)
        _time_axis(lane, story)
        return fig


def render_png(story: Story) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw(story)
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _metric(ax: Axes, story: Story, metric: str, label: str) -> None:
    assert story.window is not None
    window, limits = story.window, story.thresholds
    samples = window.samples
    times = [s.at for s in samples]
    values = [_nan(s.values.get(metric)) for s in samples]
    ax.plot(times, values, color=LINE, linewidth=1.5, marker=".", markersize=4, label=label)
    base = window.baseline.get(metric)
    if base is not None:
        ax.axhline(base, color=BASELINE, linestyle="--", linewidth=1, label=f"baseline {base:.4g}")
    early = [window.opened_at, window.early_until] if window.opened_at and window.early_until else None
    if metric == ERROR_RATE:
        ax.axhline(limits.normal_error_rate_pct, color=LIMITS["P3"], linestyle=":", label="normal (P3 above)")
        for severity, pct in sorted(limits.error_rate_pct.items()):
            ax.axhline(
                pct,
                color=LIMITS.get(severity),
                linestyle="-.",
                linewidth=1,
                label=f"{severity} above {pct:g}%",
            )
        if early:
            ax.hlines(limits.rollback_error_rate_pct, *early, colors=MARKS["rollback"], linestyles="--")
    elif base is not None and base > 0:
        for severity, pct in sorted(limits.latency_pct.items()):
            line = base * (1 + pct / 100)
            ax.axhline(
                line,
                color=LIMITS.get(severity),
                linestyle="-.",
                linewidth=1,
                label=f"{severity}: {pct:g}% slower",
            )
        if early:
            trigger = base * (1 + limits.rollback_latency_pct / 100)
            ax.hlines(trigger, *early, colors=MARKS["rollback"], linestyles="--")
    words = "error rate" if metric == ERROR_RATE else "latency"
    bad = [(s.at, s.values.get(metric)) for s in samples if any(r.startswith(words) for r in s.rules)]
    bad = [(t, v) for t, v in bad if v is not None]
    if bad:
        ax.scatter(*zip(*bad, strict=True), color=MARKS["breach"], marker="x", s=40, zorder=3, label="breach")
    if early:
        ax.plot([], [], color=MARKS["rollback"], linestyle="--", label="automatic rollback above")
    for kind in ("apply", "rollback"):
        for moment in marks(story)[kind]:
            ax.axvline(moment, color=MARKS[kind], linewidth=1, linestyle="--")
    ax.set_ylabel(label)
    ax.grid(True, color="#e5e5e5")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _lane(ax: Axes, story: Story) -> None:
    for row, (kind, times) in enumerate(marks(story).items()):
        if times:
            ax.vlines(times, row - 0.35, row + 0.35, colors=MARKS[kind], linewidth=3, antialiased=False)
    ax.set_yticks(range(len(MARKS)), list(MARKS))
    ax.set_ylim(len(MARKS) - 0.5, -0.5)
    ax.grid(True, axis="x", color="#e5e5e5")


def _time_axis(ax: Axes, story: Story) -> None:
    """Every sample and mark in view, a little room each side, labelled in UTC."""
    from datetime import UTC

    import matplotlib.dates as mdates

    moments: list[datetime] = [s.at for s in story.window.samples] if story.window else []
    moments += [t for times in marks(story).values() for t in times]
    first, last = min(moments), max(moments)
    room = max((last - first) * 0.02, timedelta(seconds=5))
    ax.set_xlim(first - room, last + room)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    ax.set_xlabel(f"time (UTC), {first:%Y-%m-%d}")


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
