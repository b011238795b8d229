"""How times, durations and values read in every export: UTC always, and said so."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with its ``Z``, to the microsecond stored: what machines read (JSON, CSV)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc(moment: datetime | None, *, date: bool = True) -> str:
    """To the second, for people: ``2026-11-28 02:00:05 UTC`` (or ``02:00:05`` in a column headed UTC)."""
    if moment is None:
        return "—"
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    return f"{shown} UTC" if date else shown


def duration(seconds: float | None) -> str:
    """``0.4 s``, ``12.0 s``, ``4 min 30 s``, ``2 h 5 min``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"
