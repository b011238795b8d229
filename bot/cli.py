"""``migrate-bot``: the same services Slack drives, for operators and CI pipelines.

Exit codes: 0 success; 1 ``--fail-on`` level reached; 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.app import build_services, configure_logging, load_bot_config, planning_only_config
from bot.config import ConfigError, Settings
from bot.errors import UserError
from bot.plans import draft_plan, environment
from bot.report import render_json, render_markdown, render_text
from bot.sql.model import Level
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
