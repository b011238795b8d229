"""``migrate-bot demo``: the bot's main job on embedded defaults, printed instead of posted, as one short
story: a few example migrations planned against an embedded PostgreSQL holding the example chat schema,
one plan in full, a High plan's rehearsal gate, a run, its monitor window and its timeline export.

It keeps everything in its own directory (``.migrate-bot/demo``), emptied at every start so that two runs
tell the same story; its store is SQLite there unless ``DATABASE_URL`` says otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
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
from bot.execution.rehearsal_report import report_lines
from bot.execution.rehearsing import REHEARSABLE
from bot.markup import plain
from bot.notifier import ConsoleNotifier
from bot.plans import plan_summary
from bot.rules import PEER_ROLE
from bot.sql.model import Level
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
# The demo's own directory, emptied at every start: its store, its embedded server's data, its exports.
DEMO_STATE = Path(DEFAULT_STATE_DIR) / "demo"
# Where the run's timeline export goes unless told (``--timeline-out docs`` made the README's example).
TIMELINE_OUT = DEMO_STATE / "timeline"
# The examples the demo plans: a few that tell the story (the run, the rehearsal gate, hazards).
SHOWN = [
    RUN_WALK,
    "055_add_feature_toggle.sql",
    "058_messages_user_fk.sql",
    APPROVAL_WALK,
    FAILED_REHEARSAL,
    "066_index_without_concurrently.sql",
    "080_do_block_backfill.sql",
    "086_drop_users_table.sql",
]


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
    if record.state != "passed":  # what went wrong, as the thread says it
        for line in report_lines(record)[1:]:
            say(f"  {plain(line)}")
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


class DemoConsole:
    """What the bot would post, printed for a terminal: quiet while ``quiet`` (kept, not printed), and
    without the plan-message redraws (each sign-off and step has its own line already)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.quiet = False

    def write(self, text: str) -> None:
        if not self.quiet and not text.startswith("  ↻ plan #"):
            self.say(text)


def featured_plan(text: str) -> str:
    """A plan as the console notifier prints it, its checklist sections folded into one line (the demo
    shows the plan whose run it follows; the checklist is the same on every plan)."""
    sections = text.split("\n\n")
    checklist = [s for s in sections if s.startswith("Checklist: ")]
    items = sum(s.count("\n  [") for s in checklist)
    kept = [s for s in sections if not s.startswith("Checklist: ")]
    note = f"Checklist: {len(checklist)} sections, {items} items (in the plan's thread, ticked by evidence)"
    return "\n\n".join([*kept[:-1], note, kept[-1]]) if kept else note


def run_demo(  # type: ignore[no-untyped-def]
    *, keep: bool = False, examples: Path = EXAMPLES, out=sys.stdout, timeline_out: Path | None = None
) -> int:
    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    # a clean start every run: the demo's own directory, its store there unless DATABASE_URL says
    shutil.rmtree(DEMO_STATE, ignore_errors=True)
    DEMO_STATE.mkdir(parents=True)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{DEMO_STATE}/state.db")
    settings = Settings.from_env()
    say("migrate-bot demo: the example chat database's migrations, as the bot would post them in Slack\n")
    started = time.monotonic()
    admin_dsn = start_server(DEMO_STATE / "pgdata", delete_on_exit=not keep)
    dsn = create_database(admin_dsn, "nself_demo")
    counts = load_example_schema(dsn, examples)
    start_app(dsn)
    rows = ", ".join(f"{n:,} {t.removeprefix('nchat_').replace('_', ' ')}" for t, n in counts.items())
    say(f"An embedded PostgreSQL with the example schema: {rows} ({time.monotonic() - started:.1f} s).")

    os.environ[DEMO_DSN_ENV] = dsn
    config = load_config(examples / "demo-config.yaml")
    clock = DemoClock()
    services = build_services(settings, config, clock=clock)
    console = DemoConsole(say)
    notifier = ConsoleNotifier(write=console.write)
    deliverer = Deliverer(db=services.db, config=config, notifier=notifier, clock=clock)
    env = config.environment(DEMO_ENVIRONMENT)

    say("\n1. A few of the examples planned against it (`/migrate plan <file> production`):\n")
    plan_ids, posted = {}, {}
    width = max(len(name) for name in SHOWN)
    say(f"   {'#':>2}  {'file':<{width}}  complexity  hazards  rollback")
    for name in SHOWN:
        kept: list[str] = []
        console.say = kept.append
        submission = services.planner.submit(
            env_name=env.name, file_arg=name, author=DEMO_AUTHOR, typed_in="#migrations"
        )
        deliverer.deliver_due()
        console.say = say
        plan = submission.plan
        assert plan is not None
        plan_ids[name], posted[name] = plan.id, "\n".join(kept)
        level, hazards = Level(plan.complexity).label, plan_summary(plan).hazards.total
        say(f"   {plan.id:>2}  {name:<{width}}  {level:<10}  {hazards:>7}  {plan.rollback['source']}")
    say(f"\n   ({len(SHOWN)} plans stored; `migrate-bot plan examples/migrations/<file>` shows any example)")

    say(f"\n2. Plan #{plan_ids[RUN_WALK]} in full, as its Slack message and thread show it:\n")
    say(featured_plan(posted[RUN_WALK]))

    say("\n3. A production High plan waits for its rehearsal on a scratch copy:")
    console.quiet = True
    walk_approvals(services, deliverer, plan_ids[APPROVAL_WALK], say)
    walk_rehearsal(services, deliverer, plan_ids[APPROVAL_WALK], say)
    walk_rehearsal(services, deliverer, plan_ids[FAILED_REHEARSAL], say)
    console.quiet = False

    say(f"\n4. Plan #{plan_ids[RUN_WALK]}: its sign-offs, its run, the hour after it:")
    walk_approvals(services, deliverer, plan_ids[RUN_WALK], say)
    if walk_run(services, deliverer, plan_ids[RUN_WALK], say):
        walk_window(services, deliverer, clock, plan_ids[RUN_WALK], dsn, say)

    say("\n5. Its timeline, for the incident review (`/migrate timeline <plan>`):")
    write_example(services, plan_ids[RUN_WALK], timeline_out or TIMELINE_OUT, say)
    if keep:
        say(f"\nThe embedded server is left running; its data in {DEMO_STATE / 'pgdata'}; DSN {dsn}")
    say(
        "\nLook around (the demo's store and config):\n"
        f"  export DATABASE_URL={settings.database_url} MIGRATE_BOT_CONFIG={examples / 'demo-config.yaml'}\n"
        "  migrate-bot list\n"
        f"  migrate-bot status {plan_ids[RUN_WALK]}\n"
        f"  migrate-bot timeline {plan_ids[RUN_WALK]} --format json --out {TIMELINE_OUT}"
    )
    return 0
