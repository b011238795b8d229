"""``migrate-bot``: the same services Slack drives, for operators and CI pipelines.

Exit codes: 0 success; 1 ``--fail-on`` level reached; 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.app import build_services, configure_logging, load_bot_config, planning_only_config
from bot.approvals import Approvals, status_dict
from bot.config import ConfigError, Settings
from bot.errors import UserError
from bot.notifier import ConsoleNotifier, Notifier
from bot.plans import draft_plan, environment
from bot.report import approval_lines, render_json, render_markdown, render_text, title
from bot.reviewing import Reviews, plan_view
from bot.roles import RoleDirectory
from bot.sql.model import Level
from bot.states import PlanState
from bot.targets import open_catalog

EXIT_FAIL_ON = 1
EXIT_USAGE = 2


def _cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    if args.config or settings.config_path:
        config = load_bot_config(settings, args.config)
    else:
        config = planning_only_config(Path(args.file).resolve().parent)
    env = environment(config, args.env)
    file_arg = args.file
    if not Path(file_arg).is_absolute() and Path(file_arg).is_file():
        # a path from the current directory; it must still lie in the environment's migrations directory
        file_arg = str(Path(file_arg).resolve())
    with open_catalog(env) as catalog:
        draft = draft_plan(config, env.name, file_arg, catalog=catalog)
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: render_text(draft, config.policy),
        "markdown": lambda: render_markdown(draft, config.policy),
        "json": lambda: render_json(draft),
    }
    sys.stdout.write(renderers[args.format]())
    if args.fail_on and draft.reaches(Level(args.fail_on)):
        print(f"migrate-bot: plan reaches --fail-on {args.fail_on}", file=sys.stderr)
        return EXIT_FAIL_ON
    return 0


def _cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    config = load_bot_config(settings, args.config)
    print(f"{config.path}: OK ({len(config.environments)} environment(s), {len(config.roles)} role(s))")
    if args.slack:
        problems = settings.slack_problems()
        if problems:
            raise ConfigError(problems)
        print("Slack settings: OK")
    return 0


def _cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import Database

    Database(settings.database_url).upgrade()
    print("database schema is up to date")
    return 0


def _reviews(args: argparse.Namespace, settings: Settings) -> Reviews:
    """The approval service for operators: Slack messages are updated when a bot token is set."""
    config = load_bot_config(settings, args.config)
    services = build_services(settings, config)
    notifier: Notifier = ConsoleNotifier(write=lambda text: print(text, file=sys.stderr))
    if settings.slack_bot_token is not None:
        from handlers.slack_notifier import SlackNotifier, make_client

        client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
        notifier = SlackNotifier(client)
    return Reviews(Approvals(services.db, config, RoleDirectory(config.roles)), notifier, config)


def _cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    if not args.reason.strip():
        raise UserError("--reason: say why Slack's approval flow is bypassed")
    reviews = _reviews(args, settings)
    outcome = reviews.approvals.approve(
        args.plan, user=args.operator, slot=args.role, break_glass_reason=args.reason.strip()
    )
    reviews.announce(outcome)
    print(reviews.news(outcome))
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    reviews = _reviews(args, settings)
    plan, status = reviews.approvals.status(args.plan)
    view = plan_view(reviews.config, plan, status)
    if args.format == "json":
        print(json.dumps(status_dict(plan, status), indent=2))
    else:
        assert view.meta is not None
        print(f"{title(view.draft, view.meta)}: {PlanState(plan.state).label} · author {plan.author}")
        print("\n".join(f"  {line}" for line in approval_lines(status)))
    return 0


def _cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    reviews = _reviews(args, settings)
    for plan, status in reviews.approvals.open_plans(args.channel):
        missing = ", ".join(s.label for s in status.missing) or "nothing"
        print(f"#{plan.id}\t{plan.environment}\t{plan.file_name}\t{plan.state}\tmissing: {missing}")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.server import serve

    problems = settings.slack_problems()
    if problems:
        raise ConfigError(problems)
    config = load_bot_config(settings, args.config)
    configure_logging(settings)
    serve(build_services(settings, config))
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    return run_demo(keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migrate-bot", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="config YAML (default: $MIGRATE_BOT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan = sub.add_parser("plan", help="analyse a migration and print its plan")
    plan.add_argument("file", help="migration file (relative to the environment's migrations directory)")
    plan.add_argument("--env", help="environment (default: the config's default_environment)")
    plan.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    plan.add_argument(
        "--fail-on",
        choices=[lv.value for lv in Level],
        help="exit 1 when complexity or a hazard reaches this level",
    )
    plan.set_defaults(func=_cmd_plan)

    check = sub.add_parser("check-config", help="validate the config file and print every problem")
    check.add_argument("--slack", action="store_true", help="also check the Slack settings serve needs")
    check.set_defaults(func=_cmd_check_config)

    db = sub.add_parser("db", help="the bot's own database")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply the bot's schema migrations").set_defaults(func=_cmd_db_upgrade)

    approve = sub.add_parser(
        "approve", help="break-glass: record one sign-off without Slack, with the operator's name and reason"
    )
    approve.add_argument("plan", help="plan id, e.g. 12 or #12")
    approve.add_argument("--role", required=True, help="the role or review signed, e.g. technical_lead")
    approve.add_argument("--operator", required=True, help="who is signing (name or Slack user id)")
    approve.add_argument("--reason", required=True, help="why Slack's approval flow was bypassed")
    approve.set_defaults(func=_cmd_approve)

    status = sub.add_parser("status", help="a plan's state, sign-offs and what is missing")
    status.add_argument("plan", help="plan id")
    status.add_argument("--format", choices=["text", "json"], default="text")
    status.set_defaults(func=_cmd_status)

    listing = sub.add_parser("list", help="open plans (awaiting approval or approved)")
    listing.add_argument("--channel", help="only plans posted in this Slack channel id")
    listing.set_defaults(func=_cmd_list)

    sub.add_parser(
        "serve", help="run the Slack bot (HTTP, or Socket Mode with SLACK_APP_TOKEN)"
    ).set_defaults(func=_cmd_serve)
    demo = sub.add_parser("demo", help="plan every example migration against an embedded PostgreSQL")
    demo.add_argument("--keep", action="store_true", help="leave the embedded server's data directory")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except ConfigError as err:
        print(f"migrate-bot: {err}", file=sys.stderr)
        return EXIT_USAGE
    except UserError as err:
        print(f"migrate-bot: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
