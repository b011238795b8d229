"""What a sample means, by the policy's rules: pure functions of numbers, so each decision can name the
sample and the rule behind it.

The guide's Automatic Rollback Triggers hold in the window's first minutes (error rate over 5 %, health
checks failing, performance worse by over 50 %); after them a breach opens an incident of the severity its
size gives (P1: errors over 10 % or over 50 % slower; P2: 5-10 % or 25-50 %; P3: errors above the normal
1 %). Failing health checks are an outage at any time: P0, rolled back. A value that is unknown is not
good: it is counted apart, and enough of them in a row ask a human.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.policy import MonitorPolicy, Severity

# The application's signals the rules judge; the database's signals are shown, not judged.
ERROR_RATE, LATENCY, HEALTH = "error_rate", "latency", "health"
JUDGED = (ERROR_RATE, LATENCY, HEALTH)
# Severities from the worst down, as the policy names them.
ORDER = ("P0", "P1", "P2", "P3")


class Verdict(StrEnum):
    OK = "ok"
    BAD = "bad"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    """One rule a sample broke: which, in words, how bad, and whether it rolls back by itself."""

    rule: str  # the metric it reads
    words: str
    severity: str
    automatic: bool


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    findings: tuple[Finding, ...]
    unknown: tuple[str, ...]  # judged metrics that could not be read

    @property
    def worst(self) -> Finding | None:
        return most_severe(self.findings) if self.findings else None


def most_severe(findings: Sequence[Finding]) -> Finding:
    """The finding of the highest severity (P0 first) of some."""
    return min(findings, key=lambda f: ORDER.index(f.severity))


def degradation_pct(value: float, baseline: float | None) -> float | None:
    """How much slower than the baseline, in percent; None without a usable baseline."""
    if baseline is None or baseline <= 0:
        return None
    return (value - baseline) / baseline * 100


def judge(
    values: Mapping[str, float | None],
    baseline: Mapping[str, float | None],
    *,
    early: bool,
    policy: MonitorPolicy,
    severities: Mapping[str, Severity],
) -> Judgement:
    """Judge one sample. ``values`` holds only the metrics the environment reads; ``early``: the part of
    the window where the rollback triggers act by themselves."""
    triggers = policy.rollback_triggers
    findings: list[Finding] = []
    unknown = tuple(m for m in JUDGED if m in values and values[m] is None)
    health = values.get(HEALTH)
    if health is not None and health < 1:
        findings.append(Finding(HEALTH, "health checks failing", "P0", automatic=True))
    error = values.get(ERROR_RATE)
    if error is not None:
        found = _severity(severities, "error_rate_above_pct", error, floor=policy.normal_error_rate_pct)
        if found:
            severity, limit = found
            automatic = early and error > triggers.error_rate_pct
            if automatic:
                limit = triggers.error_rate_pct
            when = f" in the first {triggers.error_rate_window_minutes:g} minutes" if automatic else ""
            findings.append(
                Finding(ERROR_RATE, f"error rate {error:.1f}% > {limit:g}%{when}", severity, automatic)
            )
    latency = values.get(LATENCY)
    slower = degradation_pct(latency, baseline.get(LATENCY)) if latency is not None else None
    if latency is not None and slower is not None:
        found = _severity(severities, "latency_degradation_above_pct", slower, floor=None)
        if found:
            severity, limit = found
            automatic = early and slower > triggers.latency_degradation_pct
            if automatic:
                limit = triggers.latency_degradation_pct
            words = (
                f"latency {latency:g} is {slower:.0f}% worse than the baseline {baseline[LATENCY]:g} "
                f"(> {limit:g}%)"
            )
            findings.append(Finding(LATENCY, words, severity, automatic))
    verdict = Verdict.BAD if findings else Verdict.UNKNOWN if unknown else Verdict.OK
    return Judgement(verdict, tuple(findings), unknown)


def _severity(
    severities: Mapping[str, Severity], field: str, amount: float, *, floor: float | None
) -> tuple[str, float] | None:
    """The worst severity whose threshold ``amount`` passes, and that threshold. A threshold of 0 (P3's
    "below 25 %") is not a trigger by itself: for errors the normal rate (``floor``) is, for latency
    nothing is."""
    for name in ORDER:
        limit = getattr(severities[name], field)
        if limit == 0 and floor is not None:
            limit = floor
        if limit and amount > limit:
            return name, float(limit)
    return None
