"""The rules of the window on the policy's defaults, which are the guide's numbers: the automatic rollback
triggers in the first minutes, the severities after them, and unknown values counted apart."""

from __future__ import annotations

import pytest

from bot.monitor.rules import Verdict, judge
from bot.policy import load_policy

POLICY = load_policy()


def judged(early: bool, baseline_latency: float | None = 100.0, **values: float | None):  # type: ignore[no-untyped-def]
    return judge(
        values,
        {"latency": baseline_latency},
        early=early,
        policy=POLICY.monitor,
        severities=POLICY.severities,
    )


@pytest.mark.parametrize(
    ("early", "values", "severity", "automatic"),
    [
        (True, {"error_rate": 8.0}, "P2", True),  # "Error rate exceeds 5% in first 10 minutes"
        (True, {"error_rate": 12.0}, "P1", True),
        (True, {"error_rate": 3.0}, "P3", False),  # above normal (<1%), under the trigger
        (False, {"error_rate": 8.0}, "P2", False),  # after the first minutes: an incident, not a rollback
        (False, {"error_rate": 12.0}, "P1", False),
        (False, {"error_rate": 1.5}, "P3", False),
        (True, {"latency": 160.0}, "P1", True),  # "Performance degrades by >50%"
        (False, {"latency": 130.0}, "P2", False),  # 25-50 % slower
        (False, {"latency": 160.0}, "P1", False),
        (False, {"health": 0.0}, "P0", True),  # failing health checks: an outage, at any time
    ],
)
def test_each_breach_has_the_guides_severity_and_action(
    early: bool, values: dict[str, float], severity: str, automatic: bool
) -> None:
    judgement = judged(early, **values)
    assert judgement.verdict is Verdict.BAD
    worst = judgement.worst
    assert worst is not None and (worst.severity, worst.automatic) == (severity, automatic), worst


def test_normal_values_are_ok_and_words_name_the_rule() -> None:
    assert judged(True, error_rate=0.5, latency=110.0, health=1.0).verdict is Verdict.OK
    worst = judged(True, error_rate=8.0).worst
    assert worst is not None and worst.words == "error rate 8.0% > 5% in the first 10 minutes"
    slower = judged(False, latency=140.0).worst
    assert slower is not None and slower.words == "latency 140 is 40% worse than the baseline 100 (> 25%)"


def test_no_data_is_not_good_data() -> None:
    judgement = judged(True, error_rate=None, latency=110.0)
    assert judgement.verdict is Verdict.UNKNOWN and judgement.unknown == ("error_rate",)
    # a known breach still counts beside an unknown value
    assert judged(True, error_rate=None, health=0.0).verdict is Verdict.BAD


def test_latency_without_a_baseline_is_not_judged() -> None:
    assert judged(False, baseline_latency=None, latency=500.0).verdict is Verdict.OK
    assert judged(False, baseline_latency=0.0, latency=500.0).verdict is Verdict.OK
