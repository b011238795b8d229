"""docs/procedure.md's tables, drawn from the policy, so the document cannot drift from what the bot enforces.

The prose is written in the Markdown file; each table sits between ``<!-- policy:NAME -->`` and
``<!-- /policy:NAME -->`` and is redrawn by ``python -m bot.docs`` (``--check`` exits 1 when the file is
stale; the tests do the same). Drawn rather than parsed back: a parser would have to understand every
table's layout and could only say "wrong", where one command rewrites them right.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.execution.steps import LABELS, StepKind
from bot.policy import STEP_NAMES, Policy, Severity, load_policy
from bot.rules import PEER_ROLE, display_name
from bot.sql.model import Level
from bot.states import OPEN_STATES, TRANSITIONS, PlanState

PROCEDURE_MD = Path(__file__).resolve().parents[1] / "docs" / "procedure.md"
_BLOCK = re.compile(r"(<!-- policy:([a-z-]+) -->\n).*?(<!-- /policy:\2 -->)", re.DOTALL)

# What each setting does, by its key under ``policy:``. A setting missing here fails ``render``: a new key
# of policy_defaults.py is documented before it ships.
MEANING = {
    "planning.max_file_bytes": "a migration (or its rollback) larger than this is refused before it is read",
    "complexity.large_table_rows": "a table of at least this many rows is large (indexing it: Medium)",
    "complexity.restructuring_tables": "a migration changing more tables than this is a major restructuring",
    "approvals.expire_after_days": "sign-offs lapse this long after planning; the plan must be made again",
    "approvals.distinct_approvers": "each sign-off by another person: one holding two roles signs once",
    "execution.lock_timeout": "how long a statement waits for its lock before it gives up (and is retried)",
    "execution.statement_timeout": "longest a single statement may run",
    "execution.max_duration_seconds": "a rehearsed migration slower than this is flagged",
    "execution.connection_drain_timeout_seconds": "longest wait for the application's sessions to close",
    "execution.lock_retries": "retries of a statement that timed out waiting for its lock",
    "execution.lock_retry_backoff_seconds": "the first pause before such a retry; each later one is longer",
    "execution.runners": "who may run, abort and roll back (`approvers`: the plan's own approver roles)",
    "execution.freezers": "who may freeze an environment and lift the freeze",
    "execution.schedule_notice_minutes": "a scheduled run is announced this long before it starts",
    "execution.command_timeout_seconds": "a runbook command (maintenance mode) slower than this fails",
    "execution.backup_timeout_seconds": "a backup (or its restore check) slower than this fails",
    "execution.backfill.batch_rows": "rows per batch of a data migration's UPDATE, each its own transaction",
    "execution.backfill.pause_seconds": "pause between two batches, so the application keeps its share",
    "execution.backfill.max_lock_seconds": "a batch holding its row locks longer than this shrinks the next",
    "monitor.window_minutes": "length of the monitored window after apply (0: no window)",
    "monitor.interval_seconds": "one sample this often",
    "monitor.normal_error_rate_pct": "error rate (%) above which a sample is not normal (P3 and worse)",
    "monitor.rollback_triggers.error_rate_pct": "early in the window, an error rate (%) over this rolls back",
    "monitor.rollback_triggers.error_rate_window_minutes": 'how long "early" lasts, from apply',
    "monitor.rollback_triggers.latency_degradation_pct": "early, latency this % over the baseline rolls back",
    "monitor.rollback_triggers.health_check_failures": "failing health checks that roll back (any time: P0)",
    "monitor.breach_samples": "bad samples in a row before a rule counts as broken",
    "monitor.inconclusive_samples": "unknown samples in a row before a person is asked: go on or roll back?",
    "monitor.redraw_every_samples": "the live line in the plan's thread is redrawn this often (and on news)",
    "monitor.reminder_hours": "the post-migration checklist comes back this many hours after apply",
    "escalation.repeat_ping_minutes": "an unacknowledged page is sent again this often",
}

# What each step of a procedure does, in the bot's words.
STEP_DOES = {
    StepKind.BACKUP: "`pg_dump` of the target into the environment's `backup_dir`; records whether "
    "point-in-time recovery is possible and the touched tables' row counts",
    StepKind.VERIFY_BACKUP: "`pg_restore --list` reads the dump back and finds the touched tables in it "
    "(with `restore_check: true`, also restores it into a scratch database and compares row counts)",
    StepKind.MAINTENANCE_ON: "runs the config's `runbook.maintenance_on` command",
    StepKind.WAIT_FOR_CONNECTIONS: "waits until no other session is connected to the target",
    StepKind.APPLY: "the approved bytes, statement by statement under the lock and statement timeouts, "
    "retrying lock timeouts; an UPDATE alone in its transaction runs in batches",
    StepKind.VERIFY: "reads the catalog back: each object expected created, changed or gone is so; "
    "the touched tables' indexes are valid",
    StepKind.INTEGRITY_CHECKS: "every foreign key checked for orphaned rows, constraints left NOT VALID and "
    "invalid indexes listed, row counts compared with the backup's",
    StepKind.MAINTENANCE_OFF: "runs the config's `runbook.maintenance_off` command",
}

_LEVELS = (Level.LOW, Level.MEDIUM, Level.HIGH)


def _value(value: Any) -> str:
    """A policy value as the tables show it: numbers without a trailing ``.0``, lists comma-separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | int):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "—"
    return str(value)


def _names(names: Iterable[str]) -> str:
    return ", ".join(display_name(n) for n in names) or "—"


def _key(path: str) -> str:
    return f"`{path}`"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _settings(policy: Policy, section: str, skip: Iterable[str] = ()) -> str:
    """Every scalar or list setting under ``section`` (nested ones dotted), with its value and meaning."""
    dumped = policy.model_dump(mode="json")[section]
    skipped = set(skip)

    def leaves(data: dict[str, Any], prefix: str) -> Iterable[tuple[str, Any]]:
        for name, value in data.items():
            if name in skipped:
                continue
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", value

    rows = [(_key(f"{section}.{k}"), _value(v), MEANING[f"{section}.{k}"]) for k, v in leaves(dumped, "")]
    return _table(("key", "default", "what it does"), rows)


def states_table(_policy: Policy) -> str:
    rows = []
    for state in PlanState:
        after = sorted(TRANSITIONS.get(state, frozenset()), key=list(PlanState).index)
        rows.append(
            (
                state.label,
                "yes" if state in OPEN_STATES else "no",
                ", ".join(s.label for s in after) or "— (final)",
            )
        )
    return _table(("state", "open", "can become"), rows)


def planning_table(policy: Policy) -> str:
    return _settings(policy, "planning")


def complexity_levels_table(policy: Policy) -> str:
    levels = policy.complexity.levels
    rows = [
        (
            level.label,
            levels[level].risk,
            levels[level].downtime,
            ", ".join(levels[level].testing),
            _key(f"complexity.levels.{level.value}"),
        )
        for level in _LEVELS
    ]
    return _table(("complexity", "risk", "expected downtime", "testing expected", "key"), rows)


def complexity_settings_table(policy: Policy) -> str:
    return _settings(policy, "complexity", skip=("rules", "levels"))


def complexity_rules_table(policy: Policy) -> str:
    rules = policy.complexity.rules
    ordered = sorted(rules, key=lambda rule: rules[rule].rank)  # stable: the YAML's order within a level
    rows = [(rule.replace("_", " "), rules[rule].label, _key(f"complexity.rules.{rule}")) for rule in ordered]
    return _table(("what the migration does", "complexity", "key"), rows)


def approvals_table(policy: Policy) -> str:
    rows = []
    for tier, by_level in policy.approvals.matrix.items():
        for level in _LEVELS:
            req = by_level[level]
            rows.append(
                (
                    tier,
                    level.label,
                    _names(req.approvers),
                    _names(req.reviews),
                    _names(req.documentation),
                    "required" if req.rehearsal_required else "—",
                    _key(f"approvals.{tier}.{level.value}"),
                )
            )
    header = ("environment tier", "complexity", "approvers", "reviews", "documentation", "rehearsal", "key")
    return _table(header, rows)


def reviews_table(policy: Policy) -> str:
    rows = [
        (
            display_name(review),
            "any member but the plan's author" if role == PEER_ROLE else f"a holder of `{role}`",
            _key(f"approvals.review_roles.{review}"),
        )
        for review, role in policy.approvals.review_roles.items()
    ]
    return _table(("review", "recorded by", "key"), rows)


def approval_settings_table(policy: Policy) -> str:
    return _settings(policy, "approvals", skip=("matrix", "review_roles"))


def procedures_table(policy: Policy) -> str:
    procedures = policy.execution.procedures
    header = ("step", "what the bot does", *(f"`{name}`" for name in procedures))
    rows = []
    for name in STEP_NAMES:
        step = StepKind(name)
        order = [str(steps.index(name) + 1) if name in steps else "—" for steps in procedures.values()]
        rows.append((LABELS[step], STEP_DOES[step], *order))
    keys = ("key", "", *(_key(f"execution.procedures.{name}") for name in procedures))
    return _table(header, [*rows, keys])


def execution_settings_table(policy: Policy) -> str:
    return _settings(policy, "execution", skip=("procedures",))


def monitor_table(policy: Policy) -> str:
    return _settings(policy, "monitor")


def _minutes(value: float | None, none: str) -> str:
    return none if value is None else "at once" if value == 0 else f"{value:g} min"


def _opened_when(policy: Policy, sev: Severity) -> str:
    """The monitor's rule for a severity, as ``bot.monitor.rules`` applies it: a threshold of 0 means the
    normal error rate for errors, and nothing for latency."""
    if sev.error_rate_above_pct is None and sev.latency_degradation_above_pct is None:
        return "health checks failing"
    parts = []
    if sev.error_rate_above_pct is not None:
        error = sev.error_rate_above_pct or policy.monitor.normal_error_rate_pct
        parts.append(f"error rate > {error:g} %")
    if sev.latency_degradation_above_pct:
        parts.append(f"> {sev.latency_degradation_above_pct:g} % slower than the baseline")
    return " or ".join(parts)


def severities_table(policy: Policy) -> str:
    rollback = {
        "automatic": "automatic",
        "after_assessment": "after assessment",
        "not_required": "not required",
    }
    rows = [
        (
            f"**{name}** {sev.name}",
            "; ".join(sev.examples),
            _opened_when(policy, sev),
            _minutes(sev.response_minutes, "next business day"),
            rollback[sev.rollback],
            _minutes(sev.rollback_after_minutes, "—"),
            _key(f"severities.{name}"),
        )
        for name, sev in policy.severities.items()
    ]
    header = (
        "severity",
        "for example",
        "the monitor opens it when",
        "response within",
        "rollback",
        "rollback decided within",
        "key",
    )
    return _table(header, rows)


def escalation_table(policy: Policy) -> str:
    chain = policy.escalation.chain
    rows = [
        (
            str(i),
            display_name(level.role),
            _minutes(level.after_minutes, "—"),
            _key(f"escalation.chain[{i - 1}]"),
        )
        for i, level in enumerate(chain, start=1)
    ]
    every = f"every {policy.escalation.repeat_ping_minutes:g} min"
    rows.append(("again", "whoever was paged", every, _key("escalation.repeat_ping_minutes")))
    return _table(("level", "paged", "after the incident opens, unacknowledged", "key"), rows)


def _checklist(sections: dict[str, list[str]], key: str) -> str:
    rows = [
        (title, "<br>".join(f"☐ {item}" for item in items), _key(f"{key}.{title}"))
        for title, items in sections.items()
    ]
    return _table(("section", "items", "key"), rows)


def checklist_table(policy: Policy) -> str:
    return _checklist(policy.checklist, "checklist")


def post_checklist_table(policy: Policy) -> str:
    return _checklist(policy.post_checklist, "post_checklist")


BLOCKS: dict[str, Callable[[Policy], str]] = {
    "states": states_table,
    "planning": planning_table,
    "complexity-levels": complexity_levels_table,
    "complexity-settings": complexity_settings_table,
    "complexity-rules": complexity_rules_table,
    "approvals": approvals_table,
    "reviews": reviews_table,
    "approval-settings": approval_settings_table,
    "procedures": procedures_table,
    "execution-settings": execution_settings_table,
    "monitor": monitor_table,
    "severities": severities_table,
    "escalation": escalation_table,
    "checklist": checklist_table,
    "post-checklist": post_checklist_table,
}


def render(text: str, policy: Policy) -> str:
    """``text`` with every marked table redrawn from ``policy``; each block appears exactly once."""
    found = [m.group(2) for m in _BLOCK.finditer(text)]
    unknown = sorted(set(found) - set(BLOCKS))
    missing = sorted(set(BLOCKS) - set(found))
    twice = sorted({name for name in found if found.count(name) > 1})
    if unknown or missing or twice:
        raise ValueError(f"policy blocks: unknown {unknown}, missing {missing}, repeated {twice}")
    return _BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)](policy) + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale; change nothing")
    parser.add_argument("--file", type=Path, default=PROCEDURE_MD)
    args = parser.parse_args(argv)
    current = args.file.read_text(encoding="utf-8")
    wanted = render(current, load_policy())
    if wanted == current:
        return 0
    if args.check:
        print(f"{args.file}: stale; run python -m bot.docs", file=sys.stderr)
        return 1
    args.file.write_text(wanted, encoding="utf-8")
    print(f"{args.file}: tables redrawn from the policy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
