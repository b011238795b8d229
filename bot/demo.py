"""``migrate-bot demo``: the bot's main job on embedded defaults, printed instead of posted.

Starts an embedded PostgreSQL, loads the example chat schema with some thousands of rows, and plans
every example migration against it through the same service Slack uses, with the console notifier.
The bot's own state goes to SQLite (``DATABASE_URL`` overrides).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bot.app import Services, build_services
from bot.config import DEFAULT_STATE_DIR, Settings, load_config
from bot.delivery import Deliverer
from bot.demo_window import DemoClock, start_app, walk_window, write_example
from bot.embedded import create_database, start_server
from bot.errors import UserError
from bot.execution.rehearsing import REHEARSABLE
from bot.notifier import ConsoleNotifier
from bot.plans import plan_summary
from bot.policy import PEER_ROLE
from bot.sql.model import Level
from bot.sql.rollback import ROLLBACK_SUFFIX
from bot.states import PlanState

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_DSN_ENV = "DEMO_DATABASE_URL"
DEMO_ENVIRONMENT = "production"
DEMO_AUTHOR = "UDEMOAUTHOR"
# The plan whose approvals the demo walks through: production, High complexity, so it also waits for a
# passing rehearsal (its rollback is generated and complete).
APPROVAL_WALK = "059_rename_full_name.sql"
# A plan whose rehearsal fails: its generated rollback cannot give a dropped column back.
FAILED_REHEARSAL = "061_drop_legacy_field.sql"
# The plan the demo approves and runs, step by step, on the embedded database, then rolls back.
RUN_WALK = "054_add_message_bookmarks.sql"
DEMO_PEER = "UDEMOPEER"  # a colleague for the peer review: anyone but the author
# Where the run's timeline export goes unless told (``--timeline-out docs`` made the README's example).
TIMELINE_OUT = Path(DEFAULT_STATE_DIR) / "timeline"


def example_migrations(migrations_dir: Path) -> list[Path]:
    return sorted(p for p in migrations_dir.glob("*.sql") if not p.name.endswith(ROLLBACK_SUFFIX))


def load_example_schema(dsn: str, examples: Path) -> dict[str, int]:
    """Schema and seed rows; returns row counts per table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for script in ("schema.sql", "seed.sql"):
            conn.execute((examples / script).read_text(encoding="utf-8"))
        rows = conn.execute(
            "SELECT relname, reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'nchat' AND c.relkind = 'r' ORDER BY relname"
        ).fetchall()
    return {name: count for name, count in rows}


def walk_approvals(
    services: Services, deliverer: Deliverer, plan_id: int, say: Callable[[str], None]
) -> None:
    """Every role the plan needs signs it, after the author's own click is refused."""
    approvals = services.approvals
    plan, status = approvals.status(plan_id)
    say(f"\nApprovals for plan #{plan_id} ({plan.file_name}): {', '.join(s.label for s in status.slots)}")
    if PlanState(plan.state) is not PlanState.AWAITING_APPROVAL:
        say(f"  plan #{plan_id} is {PlanState(plan.state).label} already (an earlier demo run approved it)")
        return
    try:
        approvals.approve(plan_id, user=DEMO_AUTHOR)
    except UserError as err:
        say(f"  ✋ the author clicks Approve: refused ({err})")
    signed: set[str] = set()  # each sign-off by a different person
    for slot in status.slots:
        holders = [DEMO_PEER] if slot.role == PEER_ROLE else services.config.roles[slot.role].users
        user = next(u for u in holders if u not in signed)
        signed.add(user)
        approvals.approve(plan_id, user=user, slot=slot.name)
        deliverer.deliver_due()
    plan, status = approvals.status(plan_id)
    say(
        f"Plan #{plan_id} is {PlanState(plan.state).label}"
        + (" (it needs a passing rehearsal)" if status.rehearsal_missing else "")
    )


def walk_rehearsal(
    services: Services, deliverer: Deliverer, plan_id: int, say: Callable[[str], None]
) -> None:
    """Rehearse the plan on a scratch copy of the embedded database: up, down, up."""
    plan, status = services.approvals.status(plan_id)
    if status.rehearsal is not None or PlanState(plan.state) not in REHEARSABLE:
        return
    say(f"\nRehearsing plan #{plan_id} ({plan.file_name}) on a scratch copy:")
    rehearsals = services.rehearsals
    record = rehearsals.run(rehearsals.order(plan_id, user=DEMO_AUTHOR, operator=True))
    deliverer.deliver_due()
    plan, _ = services.approvals.status(plan_id)
    say(f"Rehearsal #{record.id} {record.state}; plan #{plan_id} is {PlanState(plan.state).label}")


def walk_run(services: Services, deliverer: Deliverer, plan_id: int, say: Callable[[str], None]) -> bool:
    """Run the approved plan's procedure on the embedded database, printing what Slack would show in
    the plan's thread; whether its monitor window is open now."""
    plan, _ = services.approvals.status(plan_id)
    if PlanState(plan.state) is not PlanState.APPROVED:
        say(f"\nPlan #{plan_id} is {PlanState(plan.state).label} already (an earlier demo run ran it)")
        return False
    runner = services.runner
    operator = services.config.roles["technical_lead"].users[0]
    say(f"\nRunning plan #{plan_id} ({plan.file_name}) on the embedded database, every step:")
    state = runner.execute(runner.order_run(plan_id, user=operator, what="all"))
    deliverer.deliver_due()
    say(f"Plan #{plan_id} is {state.label}")
    return state is PlanState.MONITORING


def run_demo(  # type: ignore[no-untyped-def]
    *, keep: bool = False, examples: Path = EXAMPLES, out=sys.stdout, timeline_out: Path | None = None
) -> int:
    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    settings = Settings.from_env()
    data_dir = Path(tempfile.mkdtemp(prefix="migrate-bot-demo-")) / "pgdata"
    say(f"Starting an embedded PostgreSQL in {data_dir} …")
    admin_dsn = start_server(data_dir, delete_on_exit=not keep)
    dsn = create_database(admin_dsn, "nself_demo")
    started = time.monotonic()
    counts = load_example_schema(dsn, examples)
    start_app(dsn)
    say(
        f"Loaded the example schema in {time.monotonic() - started:.1f}s: "
        + ", ".join(f"{t} {n:,} rows" for t, n in counts.items())
    )

    os.environ[DEMO_DSN_ENV] = dsn
    config = load_config(examples / "demo-config.yaml")
    clock = DemoClock()
    services = build_services(settings, config, clock=clock)
    deliverer = Deliverer(db=services.db, config=config, notifier=ConsoleNotifier(write=say), clock=clock)
    env = config.environment(DEMO_ENVIRONMENT if DEMO_ENVIRONMENT in config.environments else None)
    summary = []
    plan_ids = {}
    for path in example_migrations(env.directory):
        say()
        submission = services.planner.submit(
            env_name=env.name, file_arg=path.name, author=DEMO_AUTHOR, typed_in="#migrations"
        )
        plan = submission.plan
        assert plan is not None
        if submission.unchanged:
            say(f"{path.name}: unchanged since plan #{plan.id}, nothing new planned")
        deliverer.deliver_due()
        plan_ids[path.name] = plan.id
        summary.append(
            (path.name, Level(plan.complexity), plan_summary(plan).hazards.total, plan.rollback["source"])
        )
    say("\nSummary")
    width = max(len(name) for name, *_ in summary)
    for name, level, hazards, rollback in summary:
        say(f"  {name:<{width}}  {level.label:<6}  {hazards:>2} hazard(s)  rollback {rollback}")
    say(f"\n{len(summary)} plans stored in {settings.database_url}")
    walk_approvals(services, deliverer, plan_ids[APPROVAL_WALK], say)
    walk_rehearsal(services, deliverer, plan_ids[APPROVAL_WALK], say)
    walk_rehearsal(services, deliverer, plan_ids[FAILED_REHEARSAL], say)
    walk_approvals(services, deliverer, plan_ids[RUN_WALK], say)
    if walk_run(services, deliverer, plan_ids[RUN_WALK], say):
        walk_window(services, deliverer, clock, plan_ids[RUN_WALK], dsn, say)
    write_example(services, plan_ids[RUN_WALK], timeline_out or TIMELINE_OUT, say)
    if keep:
        say(f"Embedded server left running; data in {data_dir}; DSN {dsn}")
    return 0
