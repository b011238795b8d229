"""migrate-bot: plan, approve, run and roll back PostgreSQL migrations; the services Slack drives, for
operators and CI pipelines.

Exit codes: 0 success; 1 ``--fail-on`` level reached; 2 bad input or configuration. Every failure a
user can fix is one answer on stderr, never a traceback.

A CI pipeline runs ``plan`` once per file, so this module loads only what parsing arguments needs; each
command imports what it uses (planning; the store, Slack, the services) inside its function, when it runs.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from bot.errors import UserError
from bot.markup import plain
from bot.redact import redact, redact_stream
from bot.sql.model import Level
from bot.states import PlanState

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.app import Services
    from bot.config import RoleConfig
    from bot.delivery import Deliverer
    from bot.drafting import PlanDraft, PlanningConfig
    from bot.git_source import Checkout
    from bot.rules import PlanningRules
    from bot.settings import Secret, Settings
    from bot.sql.catalog import Catalog

EXIT_FAIL_ON = 1
EXIT_USAGE = 2
# Before starting, Slack gets this long to answer: a Slack that does not answer is a problem to report.
SLACK_CHECK_TIMEOUT_SECONDS = 5
# What Slack answers for a token it will not take.
TOKEN_REFUSED = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}


def _slack_errors() -> tuple[type[Exception], ...]:
    """A Slack call that failed: Slack's error, a network error, or a URL the client cannot use."""
    import http.client

    from slack_sdk.errors import SlackClientError

    return (SlackClientError, OSError, http.client.HTTPException, ValueError)


def _cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    """Each file planned in turn, in one process (a pipeline's files need not each start Python); a file
    that cannot be planned is said on stderr and the others still are; among several files, a rollback
    script (which a glob of the directory holds) is left to its migration's plan."""
    from bot.memory import no_cycle_collection

    failed, reached, printed = False, False, 0
    # the cycle collector off for the whole command: on in between, or after, its first pass would walk
    # every module it loads and every object of the draft (a second each of a 10 MB file's plan)
    with no_cycle_collection(), _planning(args, settings) as (config, source, catalog):
        from bot.sql.rollback import ROLLBACK_SUFFIX

        for file_arg in args.files:
            if len(args.files) > 1 and file_arg.endswith(ROLLBACK_SUFFIX):  # a glob of the directory's
                print(f"migrate-bot: {file_arg}: a rollback, planned with its migration", file=sys.stderr)
                continue
            try:
                reached |= _plan_file(args, config, _file_arg(file_arg), source, catalog, first=not printed)
                printed += 1
            except UserError as err:
                if len(args.files) == 1:
                    raise
                print(f"migrate-bot: {err}", file=sys.stderr)
                failed = True
    return EXIT_USAGE if failed else EXIT_FAIL_ON if reached else 0


def _plan_file(
    args: argparse.Namespace,
    config: PlanningConfig,
    file_arg: str,
    source: Checkout | None,
    catalog: Catalog,
    *,
    first: bool,
) -> bool:
    """Plan one file and write it; whether it reaches ``--fail-on`` (and then say so on stderr)."""
    from bot.drafting import draft_plan

    draft = draft_plan(config, args.env, file_arg, catalog=catalog, checkout=source)
    _write_plan(draft, config.rules, args.format, first=first)
    if not (args.fail_on and draft.reaches(Level(args.fail_on))):
        return False
    print(f"migrate-bot: {draft.migration.name} reaches --fail-on {args.fail_on}", file=sys.stderr)
    return True


@contextmanager
def _planning(
    args: argparse.Namespace, settings: Settings
) -> Iterator[tuple[PlanningConfig, Checkout | None, Catalog]]:
    """The config ``plan`` reads, the environment's checkout at ``--ref`` (None without git), and its
    target's catalog. Without a config file: the default policy, loaded without pydantic or YAML (a small
    file plans in half the time), and no target."""
    if not (args.config or settings.config_path):
        from bot.rules import PlanningOnly
        from bot.sql.catalog import OfflineCatalog

        if args.ref:
            raise UserError("--ref reads migrations from git, which an environment of a config file names")
        directory = os.path.commonpath([Path(file).resolve().parent for file in args.files])
        yield PlanningOnly.defaults(Path(directory)), None, OfflineCatalog(None)
        return
    from bot.config import load_bot_config
    from bot.drafting import environment
    from bot.git_source import checkout
    from bot.targets import open_catalog

    config = load_bot_config(settings, args.config)
    source = checkout(environment(config, args.env), args.ref)
    with open_catalog(source.environment) as catalog:
        yield config, source, catalog


def _write_plan(draft: PlanDraft, rules: PlanningRules, form: str, *, first: bool = True) -> None:
    """One plan on stdout: JSON on one line (several files make JSON Lines), else text or Markdown, after
    a blank line when it is not the first."""
    pieces: Iterable[str]
    if form == "json":  # what pipelines read: the renderers for people are not loaded
        from bot.plan_json import json_pieces

        pieces = json_pieces(draft)  # a 10 MB file's plan is 200 MB of JSON: never held whole
    else:
        from bot.report import PlanView, markdown_pieces, text_pieces

        view = PlanView.of_draft(draft, rules)
        pieces = itertools.chain(
            () if first else ("\n",), text_pieces(view) if form == "text" else markdown_pieces(view)
        )
    for piece in redact_stream(pieces):  # CI logs are read by many: no passwords
        sys.stdout.write(piece)


def _file_arg(file_arg: str) -> str:
    """A path from the current directory made absolute (it must still lie in the environment's
    migrations directory); anything else is a name in that directory."""
    if not Path(file_arg).is_absolute() and Path(file_arg).is_file():
        return str(Path(file_arg).resolve())
    return file_arg


def _slack_failure(err: Exception, url: str) -> tuple[str | None, str]:
    """Slack's error code for a failed call (None when Slack did not answer) and what to say about it."""
    from urllib.error import URLError

    from slack_sdk.errors import SlackApiError

    code = err.response.get("error") if isinstance(err, SlackApiError) else None
    if code:
        return code, code
    reason = err.reason if isinstance(err, URLError) else err
    text = str(reason).strip() or type(reason).__name__
    return None, redact(f"cannot reach Slack at {url}: {text.splitlines()[0]}")


def _connect_slack(settings: Settings) -> WebClient:
    """A client whose token Slack accepts (``auth.test``), or a ConfigError saying why there is none."""
    from bot.config import ConfigError
    from handlers.slack_notifier import make_client

    problems = settings.slack_problems()
    if problems:
        raise ConfigError(problems)
    assert settings.slack_bot_token is not None
    client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    client.timeout = SLACK_CHECK_TIMEOUT_SECONDS
    try:
        client.auth_test()
    except _slack_errors() as err:
        code, said = _slack_failure(err, client.base_url)
        if code in TOKEN_REFUSED:
            raise ConfigError([f"SLACK_BOT_TOKEN: Slack refused the token ({code})"]) from None
        raise ConfigError(
            [f"SLACK_API_URL: {said if code is None else f'auth.test answered {code}'}"]
        ) from None
    return client


def _read_groups(
    client: WebClient, roles: Mapping[str, RoleConfig]
) -> tuple[dict[str, list[str]], list[str]]:
    """The members of every user group the roles list (each read once), and the groups that could not be."""
    listed_by: dict[str, str] = {}  # each group once, under the first role that lists it
    for role, holders in roles.items():
        for group in holders.groups:
            listed_by.setdefault(group, role)
    members: dict[str, list[str]] = {}
    problems = []
    for group, role in listed_by.items():
        try:
            members[group] = list(client.usergroups_users_list(usergroup=group)["users"])
        except _slack_errors() as err:
            why = _slack_failure(err, client.base_url)[1]
            problems.append(f"roles.{role}.groups: {group}: cannot read members ({why})")
    return members, problems


def _cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    from bot.config import ConfigError, load_bot_config, staffing_findings

    try:
        config = load_bot_config(settings, args.config)
    except ConfigError as err:
        raise ConfigError(err.problems + (settings.slack_problems() if args.slack else [])) from None
    groups, problems = _read_groups(_connect_slack(settings), config.roles) if args.slack else ({}, [])
    findings = staffing_findings(config.policy, config.roles, config.environments, groups)
    problems += [str(f) for f in findings if f.certain]
    if problems:
        raise ConfigError(problems)
    print(f"{config.path}: OK ({len(config.environments)} environment(s), {len(config.roles)} role(s))")
    for finding in findings:  # only cells that hang on user groups not read
        print(f"  note: {finding} (check-config --slack reads user groups)")
    if args.slack:
        print(f"Slack: OK (token accepted; {len(groups)} user group(s) read)")
    return 0


def _cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import Database

    Database(settings.database_url).upgrade()
    print("database schema is up to date")
    return 0


def _services(args: argparse.Namespace, settings: Settings) -> Services:
    from bot.app import build_services
    from bot.config import load_bot_config

    return build_services(settings, load_bot_config(settings, args.config))


def _deliver(services: Services, plan_id: int) -> str:
    """Send what the plan owes Slack now, when a bot token is set and no running ``serve`` delivers;
    otherwise the outbox keeps it for ``serve``. Says which happened."""
    settings = services.settings
    if settings.slack_bot_token is None:
        return "Slack will be told when `migrate-bot serve` runs (no SLACK_BOT_TOKEN here)"
    from bot.plans import get_plan
    from storage.leader import Leadership

    leadership = Leadership(services.db.engine)
    if not leadership.acquire():
        return "the running `migrate-bot serve` tells Slack"
    try:
        _slack_deliverer(services, settings.slack_bot_token).deliver_due(plan_id)
    finally:
        leadership.release()
    with services.db.session() as session:
        problems = services.outbox.problems(session, get_plan(session, plan_id))
    return "Slack is told" if not problems else plain("; ".join(problems))


def _slack_deliverer(services: Services, token: Secret) -> Deliverer:
    """A deliverer of the outbox to Slack, without retries of its own (the outbox retries)."""
    from bot.delivery import Deliverer
    from handlers.slack_notifier import SlackNotifier, make_client

    client = make_client(token.get_secret_value(), services.settings.slack_api_url, retries=False)
    return Deliverer(db=services.db, config=services.config, notifier=SlackNotifier(client))


def _cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    from bot import news

    if not args.reason.strip():
        raise UserError("--reason: say why Slack's approval flow is bypassed")
    services = _services(args, settings)
    outcome = services.approvals.approve(
        args.plan, user=args.operator, slot=args.role, break_glass_reason=args.reason.strip()
    )
    print(plain(news.decision(outcome)))
    print(_deliver(services, outcome.plan.id), file=sys.stderr)
    return 0


def _cmd_repost(args: argparse.Namespace, settings: Settings) -> int:
    from bot.plans import get_plan

    services = _services(args, settings)
    with services.db.session() as session:
        plan = get_plan(session, args.plan)
        count = services.outbox.repost(session, plan)
    print(f"plan #{plan.id}: {count} refused message(s) queued again")
    print(_deliver(services, plan.id), file=sys.stderr)
    return 0


def _run_report(services: Services, plan_id: int) -> tuple[list[str], list[str]]:
    """Each step's line as Slack shows it, and what the run still owes."""
    from bot.execution.report import step_line
    from bot.plans import get_plan

    with services.db.session() as session:
        plan = get_plan(session, plan_id)
        lines = [step_line(step, services.clock()) for step in services.runner.steps(session, plan.id)]
        return lines, services.runner.owed(session, plan)


def _print_run(services: Services, plan_id: int) -> None:
    lines, owed = _run_report(services, plan_id)
    plan, _ = services.approvals.status(plan_id)
    for line in lines:
        print(f"  {plain(line)}")
    print(f"plan #{plan.id} is {PlanState(plan.state).label}" + "".join(f"; owed: {plain(o)}" for o in owed))


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(args, settings)
    what = "all" if args.all else args.step or "next"
    order = services.runner.order_run(
        args.plan, user=args.operator, what=what, operator=True, override_reason=args.override
    )
    print(f"plan #{order.plan_id}: running {', '.join(s.value for s in order.steps)} as {args.operator}")
    state = services.runner.execute(order)
    _print_run(services, order.plan_id)
    print(_deliver(services, order.plan_id), file=sys.stderr)
    return 0 if state not in {PlanState.FAILED, PlanState.ROLLBACK_FAILED} else EXIT_FAIL_ON


def _cmd_rehearse(args: argparse.Namespace, settings: Settings) -> int:
    """Plan the file (or find its open plan of the same bytes), rehearse it here and now, and say how it
    went; a passing rehearsal counts for the plan's approvals like one asked for in Slack."""
    from bot.execution.rehearsal_report import report_lines

    services = _services(args, settings)
    submission = services.planner.submit(
        env_name=args.env, file_arg=_file_arg(args.file), author=args.operator, typed_in=None, ref=args.ref
    )
    assert submission.plan is not None  # no request key: never a duplicate
    plan_id = submission.plan.id
    rehearsal_id = services.rehearsals.order(plan_id, user=args.operator, rows=args.rows, operator=True)
    print(f"plan #{plan_id}: rehearsal #{rehearsal_id} as {args.operator}", file=sys.stderr)
    record = services.rehearsals.run(rehearsal_id, echo=lambda line: print(f"  {line}", file=sys.stderr))
    for line in report_lines(record):
        print(plain(line))
    plan, _ = services.approvals.status(plan_id)
    print(f"plan #{plan.id} is {PlanState(plan.state).label}")
    print(_deliver(services, plan_id), file=sys.stderr)
    return 0 if record.state == "passed" else EXIT_FAIL_ON


def _cmd_abort(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(args, settings)
    plan = services.runner.abort(args.plan, user=args.operator, operator=True)
    print(f"plan #{plan.id}: the run stops after its current step")
    return 0


def _cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(args, settings)
    order = services.runner.order_rollback(args.plan, user=args.operator, reason=args.reason, operator=True)
    state = services.runner.execute(order)
    _print_run(services, order.plan_id)
    print(_deliver(services, order.plan_id), file=sys.stderr)
    return 0 if state is not PlanState.ROLLBACK_FAILED else EXIT_FAIL_ON


def _cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(args, settings)
    if not args.yes:
        raise UserError(plain(services.runner.restore_warning(args.plan)) + " Add --yes to restore.")
    order = services.runner.order_restore(args.plan, user=args.operator, confirmed=True, operator=True)
    state = services.runner.execute(order)
    _print_run(services, order.plan_id)
    return 0 if state is PlanState.RESTORED else EXIT_FAIL_ON


def _cmd_freeze(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(args, settings)
    if args.lift:
        change = services.freezes.unfreeze(args.environment, user=args.operator, operator=True)
    else:
        if not args.reason:
            raise UserError("--reason: say why the environment is frozen")
        change = services.freezes.freeze(
            args.environment, user=args.operator, reason=args.reason, operator=True
        )
    print(plain(change.announcement.text))
    return 0


def _cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    from bot.execution.schedule import parse_when
    from bot.jobs import Jobs

    services = _services(args, settings)
    services.jobs = Jobs(services)  # adds the jobs for the running serve's leader to run
    try:
        if args.cancel:
            services.schedules.cancel(args.plan, user=args.operator, operator=True)
            print(f"plan #{args.plan}: the scheduled run is cancelled")
        else:
            if not args.at:
                raise UserError("--at: a time (2026-11-28T02:00, UTC) or next-window")
            record = services.schedules.schedule(
                args.plan, user=args.operator, at=parse_when(args.at), operator=True
            )
            print(f"plan #{record.plan_id} runs at {record.run_at:%Y-%m-%d %H:%M} UTC (by the running serve)")
    finally:
        services.jobs.shutdown()
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from bot.approvals import status_dict
    from bot.report import approval_lines, title
    from bot.views import plan_view

    services = _services(args, settings)
    plan, status = services.approvals.status(args.plan)
    with services.db.session() as session:
        problems = services.outbox.problems(session, plan)
    steps, owed = _run_report(services, plan.id)
    if args.format == "json":
        report = {
            **status_dict(plan, status),
            "steps": [plain(s) for s in steps],
            "owed": [plain(o) for o in owed],
        }
        print(json.dumps({**report, "delivery_problems": problems}, indent=2))
    else:
        view = plan_view(services.config, plan, status)
        print(f"{title(view)}: {PlanState(plan.state).label} · author {plan.author}")
        lines = approval_lines(status) + steps + [f"owed: {o}" for o in owed] + problems
        print("\n".join(f"  {plain(line)}" for line in lines))
    return 0


def _cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(args, settings)
    for plan, status in services.approvals.open_plans(args.channel):
        missing = ", ".join(s.label for s in status.missing) or "nothing"
        label = PlanState(plan.state).label
        print(f"#{plan.id}\t{plan.environment}\t{plan.file_name}\t{label}\tmissing: {missing}")
    return 0


def _cmd_incident(args: argparse.Namespace, settings: Settings) -> int:
    from bot.monitor.incidents import IncidentKind

    services = _services(args, settings)
    incident_id = services.incidents.open(
        args.plan,
        kind=IncidentKind.MANUAL,
        severity=args.severity,
        reason=args.reason,
        actor=args.operator,
        operator=True,
    )
    print(f"incident #{incident_id} ({args.severity}) is open on plan #{args.plan}")
    _print_run(services, int(args.plan))
    print(_deliver(services, int(args.plan)), file=sys.stderr)
    return 0


def _cmd_answer(args: argparse.Namespace, settings: Settings) -> int:
    """``acknowledge`` and ``resolve``: an incident answered from the CLI, as its buttons do."""
    services = _services(args, settings)
    if args.answer == "acknowledge":
        record = services.incidents.acknowledge(args.incident, user=args.operator, operator=True)
    else:
        record = services.incidents.resolve(
            args.incident, user=args.operator, resolution=args.resolution, operator=True
        )
    print(f"incident #{record.id} on plan #{record.plan_id} is {record.state}")
    print(_deliver(services, record.plan_id), file=sys.stderr)
    return 0


def _cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.monitor.foreground import watch

    services = _services(args, settings)
    plan_id = int(args.plan.lstrip("#")) if args.plan else None
    token = settings.slack_bot_token
    deliver = _slack_deliverer(services, token).deliver_due if token is not None else None
    if not watch(services, plan_id, echo=lambda line: print(plain(line), flush=True), deliver=deliver):
        print("the running `migrate-bot serve` watches the windows", file=sys.stderr)
        return 0
    if plan_id is not None:
        _print_run(services, plan_id)
    return 0


def _cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from bot.export import Format
    from bot.export.command import chosen_plans, export_timelines

    services = _services(args, settings)
    plans = chosen_plans(services.db, plan=args.plan, every=args.all, since=args.since, until=args.until)
    fmt = Format(args.format)
    for path in export_timelines(db=services.db, config=services.config, plans=plans, fmt=fmt, out=args.out):
        print(path)
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.config import load_bot_config
    from bot.logs import configure_logging
    from handlers.server import serve
    from storage.db import Database

    config = load_bot_config(settings, args.config)
    client = _connect_slack(settings)
    Database(settings.database_url).upgrade()  # a store that cannot be opened is an answer, not a log
    configure_logging(settings)
    serve(settings, config, client)
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    return run_demo(keep=args.keep, timeline_out=args.timeline_out)


class _Version(argparse.Action):
    """``--version``, read from the installed package only when asked: importlib.metadata is slow to load."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version

        print(f"{parser.prog} {version('migrate-bot')}")
        parser.exit()


class _Commands(argparse._SubParsersAction):
    """The commands, each one's parser built only when it is the command given: a CI pipeline runs ``plan``
    once per file, and building all of them took a twentieth of planning a small file. Help lists them all.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # every command, built or not: what argparse checks a name against
        self.choices: dict[str, None] = {}
        self._unbuilt: dict[str, tuple[Callable[[argparse.ArgumentParser], None], dict[str, Any]]] = {}

    def command(
        self, name: str, help: str, define: Callable[[argparse.ArgumentParser], None], **kwargs: Any
    ) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self.choices[name] = None
        self._unbuilt[name] = (define, kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values[0] in self._unbuilt:
            define, kwargs = self._unbuilt.pop(values[0])
            define(self.add_parser(values[0], **kwargs))
        super().__call__(parser, namespace, values, option_string)


CONFIG_HELP = "config YAML (default: $MIGRATE_BOT_CONFIG)"
PLAN_ID_HELP = "plan id"
FILE_HELP = "migration file (relative to the environment's migrations directory)"
ENV_HELP = "environment (default: the config's default_environment)"
REF_HELP = "with migrations from git: the branch, tag or commit to read it at (default: the config's)"


def _plan_args(plan: argparse.ArgumentParser) -> None:
    plan.add_argument(
        "files", nargs="+", metavar="file", help=f"{FILE_HELP}; several are planned one after another"
    )
    plan.add_argument("--env", help=ENV_HELP)
    plan.add_argument("--ref", help=REF_HELP)
    plan.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    plan.add_argument(
        "--fail-on",
        choices=[lv.value for lv in Level],
        help="exit 1 when complexity or a hazard reaches this level",
    )
    plan.set_defaults(func=_cmd_plan)


def _check_config_args(check: argparse.ArgumentParser) -> None:
    check.add_argument(
        "--slack", action="store_true", help="also check the Slack settings and token, and read user groups"
    )
    check.set_defaults(func=_cmd_check_config)


def _db_args(db: argparse.ArgumentParser) -> None:
    common = _common()
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="apply the bot's schema migrations").set_defaults(
        func=_cmd_db_upgrade, opens_store=True
    )


def _approve_args(approve: argparse.ArgumentParser) -> None:
    approve.add_argument("plan", help="plan id, e.g. 12 or #12")
    approve.add_argument("--role", required=True, help="the role or review signed, e.g. technical_lead")
    approve.add_argument("--operator", required=True, help="who is signing (name or Slack user id)")
    approve.add_argument("--reason", required=True, help="why Slack's approval flow was bypassed")
    approve.set_defaults(func=_cmd_approve, opens_store=True)


def _status_args(status: argparse.ArgumentParser) -> None:
    status.add_argument("plan", help=PLAN_ID_HELP)
    status.add_argument("--format", choices=["text", "json"], default="text")
    status.set_defaults(func=_cmd_status, opens_store=True)


def _run_args(run: argparse.ArgumentParser) -> None:
    run.add_argument("plan", help=PLAN_ID_HELP)
    which = run.add_mutually_exclusive_group()
    which.add_argument("--step", help="one step by name, e.g. backup or apply (default: the next)")
    which.add_argument("--all", action="store_true", help="every remaining step")
    run.add_argument("--operator", required=True, help="who runs it (name or Slack user id)")
    run.add_argument("--override", metavar="REASON", help="run outside the maintenance windows, and why")
    run.set_defaults(func=_cmd_run, opens_store=True)


def _rehearse_args(rehearse: argparse.ArgumentParser) -> None:
    rehearse.add_argument("file", help=FILE_HELP)
    rehearse.add_argument("--env", help=ENV_HELP)
    rehearse.add_argument("--ref", help=REF_HELP)
    rehearse.add_argument("--rows", type=int, help="synthetic rows for each table the migration touches")
    rehearse.add_argument("--operator", required=True, help="who rehearses it (name or Slack user id)")
    rehearse.set_defaults(func=_cmd_rehearse, opens_store=True)


def _freeze_args(freeze: argparse.ArgumentParser) -> None:
    freeze.add_argument("environment")
    freeze.add_argument("--reason", help="why (required to freeze)")
    freeze.add_argument("--lift", action="store_true", help="unfreeze instead")
    freeze.add_argument("--operator", required=True, help="who freezes it")
    freeze.set_defaults(func=_cmd_freeze, opens_store=True)


def _schedule_args(schedule: argparse.ArgumentParser) -> None:
    schedule.add_argument("plan", help=PLAN_ID_HELP)
    schedule.add_argument("--at", help="2026-11-28T02:00 (UTC unless it says), or next-window")
    schedule.add_argument("--cancel", action="store_true", help="cancel the scheduled run")
    schedule.add_argument("--operator", required=True, help="who schedules it")
    schedule.set_defaults(func=_cmd_schedule, opens_store=True)


def _abort_args(abort: argparse.ArgumentParser) -> None:
    abort.add_argument("plan", help=PLAN_ID_HELP)
    abort.add_argument("--operator", required=True, help="who stops it")
    abort.set_defaults(func=_cmd_abort, opens_store=True)


def _rollback_args(rollback: argparse.ArgumentParser) -> None:
    rollback.add_argument("plan", help=PLAN_ID_HELP)
    rollback.add_argument("--operator", required=True, help="who rolls it back")
    rollback.add_argument("--reason", required=True, help="why")
    rollback.set_defaults(func=_cmd_rollback, opens_store=True)


def _restore_args(restore: argparse.ArgumentParser) -> None:
    restore.add_argument("plan", help=PLAN_ID_HELP)
    restore.add_argument("--operator", required=True, help="who restores it")
    restore.add_argument("--yes", action="store_true", help="confirm what the restore overwrites")
    restore.set_defaults(func=_cmd_restore, opens_store=True)


def _repost_args(repost: argparse.ArgumentParser) -> None:
    repost.add_argument("plan", help=PLAN_ID_HELP)
    repost.set_defaults(func=_cmd_repost, opens_store=True)


def _list_args(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--channel", help="only plans posted in this Slack channel id")
    listing.set_defaults(func=_cmd_list, opens_store=True)


def _incident_args(incident: argparse.ArgumentParser) -> None:
    incident.add_argument("plan", help=PLAN_ID_HELP)
    incident.add_argument("--severity", required=True, type=str.upper, choices=["P0", "P1", "P2", "P3"])
    incident.add_argument("--reason", required=True, help="what is wrong")
    incident.add_argument("--operator", required=True, help="who opens it")
    incident.set_defaults(func=_cmd_incident, opens_store=True)


def _acknowledge_args(answering: argparse.ArgumentParser) -> None:
    answering.add_argument("incident", help="incident id")
    answering.add_argument("--operator", required=True, help="who answers")
    answering.set_defaults(func=_cmd_answer, opens_store=True, answer="acknowledge")


def _resolve_args(answering: argparse.ArgumentParser) -> None:
    _acknowledge_args(answering)
    answering.add_argument("--resolution", default="resolved from the CLI", help="how it ended")
    answering.set_defaults(answer="resolve")


def _watch_args(watching: argparse.ArgumentParser) -> None:
    watching.add_argument("plan", nargs="?", help="plan id (default: every open window)")
    watching.set_defaults(func=_cmd_watch, opens_store=True)


def _timeline_args(timeline: argparse.ArgumentParser) -> None:
    timeline.add_argument("plan", nargs="?", help="plan id (or --all)")
    timeline.add_argument("--all", action="store_true", help="every plan with an event in --since … --until")
    timeline.add_argument("--since", help="with --all: from this date or time (UTC unless it says)")
    timeline.add_argument("--until", help="with --all: before this date or time (default: now)")
    timeline.add_argument("--format", choices=["md", "json", "csv", "png"], default="md")
    timeline.add_argument("--out", type=Path, default=Path("."), help="folder to write into (default: here)")
    timeline.set_defaults(func=_cmd_timeline, opens_store=True)


def _serve_args(serve: argparse.ArgumentParser) -> None:
    serve.set_defaults(func=_cmd_serve, opens_store=True)


def _demo_args(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--keep", action="store_true", help="leave the embedded server's data directory")
    demo.add_argument(
        "--timeline-out", type=Path, help="folder for the run's timeline export (.migrate-bot/timeline)"
    )
    demo.set_defaults(func=_cmd_demo, opens_store=True)


COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("plan", "analyse a migration and print its plan", _plan_args),
    ("check-config", "validate the config file and print every problem", _check_config_args),
    ("db", "the bot's own database", _db_args),
    (
        "approve",
        "break-glass: record one sign-off without Slack, with the operator's name and reason",
        _approve_args,
    ),
    ("status", "a plan's state, sign-offs and what is missing", _status_args),
    ("run", "run an approved plan's next step, a step, or all", _run_args),
    (
        "rehearse",
        "apply, roll back and apply again a migration on a scratch copy of its target",
        _rehearse_args,
    ),
    ("freeze", "freeze an environment: nothing runs there", _freeze_args),
    ("schedule", "run a plan's remaining steps at a time", _schedule_args),
    ("abort", "stop a running plan after its current step", _abort_args),
    ("rollback", "undo what a run applied", _rollback_args),
    ("restore", "restore the run's backup after a failed rollback", _restore_args),
    ("repost", "send again what Slack refused for a plan (after inviting the bot)", _repost_args),
    ("list", "open plans (awaiting approval or approved)", _list_args),
    ("incident", "open an incident on a plan that ran (paged as its severity says)", _incident_args),
    ("acknowledge", "an incident: someone is on it: the chain stops", _acknowledge_args),
    ("resolve", "an incident: close it", _resolve_args),
    ("watch", "run the monitor windows here until they close (when no `serve` runs them)", _watch_args),
    ("timeline", "export a plan's timeline: a report with its chart, JSON, CSV", _timeline_args),
    ("serve", "run the Slack bot (HTTP, or Socket Mode with SLACK_APP_TOKEN)", _serve_args),
    ("demo", "plan every example migration against an embedded PostgreSQL", _demo_args),
]


def _common() -> argparse.ArgumentParser:
    """--config, also taken after the command; SUPPRESS leaves one given before it alone."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=CONFIG_HELP)
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate-bot",
        description="Plan, approve, run and roll back PostgreSQL migrations (the services Slack drives).",
    )
    parser.add_argument("--version", action=_Version, help="show program's version number and exit")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.set_defaults(opens_store=False)
    commands = cast(
        _Commands, parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action=_Commands)
    )
    common = _common()
    for name, help_text, define in COMMANDS:
        commands.command(name, help_text, define, parents=[common])
    return parser


def _store_problem(err: Exception) -> str | None:
    """Why the bot's store cannot be used, in one line and without the URL's password; None when ``err``
    is not about opening it (a malformed URL, where ArgumentError covers an unknown driver, or no answer)."""
    from sqlalchemy.exc import ArgumentError, OperationalError  # loaded already by a command with a store

    if isinstance(err, OperationalError):
        said = f"cannot open the bot's store: {err.orig or err}"
    elif isinstance(err, ArgumentError | ValueError):
        said = f"not a usable database URL ({err}); expected e.g. postgresql://user@host/db or sqlite:///state.db"
    else:
        return None
    return redact(said.strip().splitlines()[0])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.settings import ConfigError, Settings  # not before: --help and --version need neither

    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except (ConfigError, UserError) as err:
        problem = str(err)
    except Exception as err:
        store_problem = _store_problem(err) if args.opens_store else None
        if store_problem is None:
            raise  # not the store's: a bug, whose traceback is the useful answer
        problem = f"DATABASE_URL: {store_problem}"
    print(f"migrate-bot: {problem}", file=sys.stderr)
    return EXIT_USAGE


def run() -> NoReturn:
    """The ``migrate-bot`` command: ``main``, then the process ends."""
    code = main()
    # Python collects cycles once more at exit, walking every object the command loaded (a tenth of
    # planning a small file) to free memory the OS takes back anyway: frozen, they are left to the OS
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
