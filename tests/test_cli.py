"""``migrate-bot`` on the command line: plan for CI pipelines, and the approval commands for operators."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot import plan_json, report
from bot.cli import EXIT_FAIL_ON, EXIT_USAGE, main
from bot.drafting import PlanDraft, draft_plan
from bot.rules import PlanningOnly
from bot.sql.catalog import OfflineCatalog
from tests.conftest import EXAMPLES, REPO
from tests.slack.fake_api import FakeSlack

MIGRATIONS = EXAMPLES / "migrations"
RULES = PlanningOnly.defaults(MIGRATIONS).rules
ROLES = {
    "technical_lead": {"users": ["U0TL"]},
    "product_owner": {"users": ["U0PO"]},
    "cto": {"users": ["U0CTO"]},
    "qa": {"groups": ["S0QA"]},
    "architect": {"users": ["U0ARCH"]},
    "security": {"users": ["U0SEC"]},
    "on_call": {"users": ["U0ONCALL"]},
}
PASSWORD = "hunter2pw"
UNREACHABLE_SLACK = "http://127.0.0.1:1/api/"


@pytest.fixture(autouse=True)
def no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MIGRATE_BOT_CONFIG",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def write_config(tmp_path: Path, **overrides: object) -> Path:
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    env = {"migrations_dir": str(migrations), "server_version_num": 180000}
    data = {"environments": {"production": env}, "roles": ROLES, **overrides}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    """A fake Slack the settings point at, whose user group S0QA has two members."""
    with FakeSlack() as fake:
        fake.group_members = {"S0QA": ["U0QA1", "U0QA2"]}
        monkeypatch.setenv("SLACK_BOT_TOKEN", fake.token)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        yield fake


def _draft(name: str) -> PlanDraft:
    return draft_plan(PlanningOnly.defaults(MIGRATIONS), None, name, catalog=OfflineCatalog(None))


def one_answer(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of a failed command, which must be an answer, not a traceback."""
    err = capsys.readouterr().err
    assert err.startswith("migrate-bot: ") and "Traceback" not in err, err
    return err


def test_plan_text_names_hazards_locks_rollback_and_approvals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "066_index_without_concurrently.sql")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan: 066_index_without_concurrently.sql → development")
    assert "CREATE INDEX CONCURRENTLY" in out and "SHARE lock" in out
    assert "DROP INDEX nchat.idx_messages_created_at;" in out
    assert "No approval required" in out


def test_plan_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complexity"] == "high" and data["rollback"]["complete"] is False
    assert [h["code"] for h in data["analysis"]["hazards"]] == ["drop_column"]
    assert main(["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--format", "markdown"]) == 0
    assert "### Hazards" in capsys.readouterr().out


def test_plan_json_written_in_small_pieces_is_the_same_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long string (the rollback's SQL) is encoded and redacted a piece at a time: the same JSON."""
    command = ["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--format", "json"]
    assert main(command) == 0
    whole = capsys.readouterr().out
    monkeypatch.setattr(plan_json, "PIECE_CHARS", 40)
    assert main(command) == 0
    assert capsys.readouterr().out == whole == json.dumps(json.loads(whole), ensure_ascii=False) + "\n"
    assert len(json.loads(whole)["rollback"]["sql"]) > 40


@pytest.mark.parametrize("form", ["text", "markdown"])
def test_plan_text_written_in_small_pieces_is_the_same_text(
    form: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text is written a piece at a time too, a long line (the migration's SQL) cut: the same text."""
    command = ["plan", str(MIGRATIONS / "057_split_full_name.sql"), "--format", form]
    assert main(command) == 0
    whole = capsys.readouterr().out
    monkeypatch.setattr(report, "PIECE_CHARS", 40)
    pieces = list(report.text_pieces(report.PlanView.of_draft(_draft("057_split_full_name.sql"), RULES)))
    assert max(map(len, pieces)) < 2 * 40 and len(pieces) > 10  # a piece: what it had, and a cut
    assert main(command) == 0
    assert capsys.readouterr().out == whole
    assert ("Migration SQL:" if form == "text" else "### Migration SQL") in whole


@pytest.mark.parametrize(("level", "code"), [("high", EXIT_FAIL_ON), ("medium", EXIT_FAIL_ON)])
def test_fail_on_stops_a_pipeline(level: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "061_drop_legacy_field.sql"), "--fail-on", level]) == code
    assert f"reaches --fail-on {level}" in capsys.readouterr().err


def test_fail_on_passes_a_safe_migration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(MIGRATIONS / "058_messages_user_fk.sql"), "--fail-on", "medium"]) == 0


def test_several_files_are_planned_in_one_run_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """A pipeline plans its files in one process; each plan is one line of JSON, in the order given."""
    names = [
        "054_add_message_bookmarks.sql",
        "061_drop_legacy_field.sql",
        "066_index_without_concurrently.sql",
    ]
    rollback = MIGRATIONS / "054_add_message_bookmarks.rollback.sql"  # a glob of the directory has it
    assert main(["plan", str(rollback), *(str(MIGRATIONS / n) for n in names), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["file"] for line in captured.out.splitlines()] == names
    assert json.loads(captured.out.splitlines()[0])["rollback"]["source"] == "file"
    assert "a rollback, planned with its migration" in captured.err
    assert main(["plan", *(str(MIGRATIONS / n) for n in names[:2])]) == 0
    text = capsys.readouterr().out
    assert text.index(f"Plan: {names[0]}") < text.index(f"\n\nPlan: {names[1]}")


def test_of_several_files_a_bad_one_is_said_and_the_others_still_planned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, risky = str(MIGRATIONS / "058_messages_user_fk.sql"), str(MIGRATIONS / "061_drop_legacy_field.sql")
    assert main(["plan", str(MIGRATIONS / "nowhere.sql"), good, "--format", "json"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "no migration" in captured.err and "nowhere.sql" in captured.err
    assert [json.loads(line)["file"] for line in captured.out.splitlines()] == ["058_messages_user_fk.sql"]
    assert main(["plan", good, risky, "--fail-on", "high"]) == EXIT_FAIL_ON
    err = capsys.readouterr().err
    assert "061_drop_legacy_field.sql reaches --fail-on high" in err and "058" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["plan", "nowhere.sql"], "no migration `nowhere.sql`"),
        (
            ["plan", str(MIGRATIONS / "058_messages_user_fk.sql"), "--env", "moon"],
            "unknown environment 'moon'",
        ),
        (
            ["plan", str(MIGRATIONS / "058_messages_user_fk.sql"), "--ref", "main"],
            "--ref reads migrations from git",
        ),
        (["--config", "/nonexistent.yaml", "status", "1"], "cannot read"),
        (["status", "1", "--config", "/nonexistent.yaml"], "cannot read"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("migrate-bot: ") and words in err


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    with (migrations / "090_huge.sql").open("wb") as huge:
        huge.truncate(20_000_001)  # NUL bytes, which reading would refuse with other words
    assert main(["plan", str(migrations / "090_huge.sql")]) == EXIT_USAGE
    err = one_answer(capsys)
    assert "`090_huge.sql` is 20,000,001 bytes, over the 20,000,000 a plan may read" in err
    assert "planning.max_file_bytes" in err and capsys.readouterr().out == ""


def test_the_size_limit_is_policy_and_covers_a_rollback_beside_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, policy={"planning": {"max_file_bytes": 60}})
    (tmp_path / "migrations" / "091_small.sql").write_text("ALTER TABLE t ADD COLUMN c text;\n")
    assert main(["--config", str(config), "plan", "091_small.sql"]) == 0
    capsys.readouterr()
    (tmp_path / "migrations" / "091_small.rollback.sql").write_text("ALTER TABLE t DROP COLUMN c;\n" * 3)
    assert main(["--config", str(config), "plan", "091_small.sql"]) == EXIT_USAGE
    assert "rollback `091_small.rollback.sql` is 87 bytes, over the 60 a plan may read" in one_answer(capsys)


def test_break_glass_approve_status_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(MIGRATIONS / "058_messages_user_fk.sql", migrations)
    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["environments"] = {"production": {"migrations_dir": str(migrations), "server_version_num": 180000}}
    config["default_environment"] = "production"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/state.db")

    from bot.app import build_services
    from bot.config import Settings, load_config

    services = build_services(Settings.from_env(), load_config(path))
    plan = services.planner.submit(
        env_name=None, file_arg="058_messages_user_fk.sql", author="U0AUTHOR", typed_in="C0MIGRATE1"
    ).plan
    assert plan is not None
    assert (
        main(["approve", str(plan.id), "--role", "qa", "--operator", "dana", "--reason", " "]) == EXIT_USAGE
    )
    capsys.readouterr()
    assert (
        main(["approve", str(plan.id), "--role", "qa", "--operator", "dana", "--reason", "QA lead on leave"])
        == 0
    )
    assert "approved as QA (break-glass: QA lead on leave)" in capsys.readouterr().out
    assert main(["status", str(plan.id), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["given"][0]["via"] == "cli" and status["given"][0]["user"] == "dana"
    assert status["missing"] == ["technical_lead", "peer_review"]
    assert main(["list"]) == 0
    assert "\tawaiting approval\tmissing: Technical Lead, Peer Review" in capsys.readouterr().out
    assert (
        main(["approve", str(plan.id), "--role", "qa", "--operator", "eve", "--reason", "again"])
        == EXIT_USAGE
    )
    assert "QA already approved" in capsys.readouterr().err
    reason = ["--reason", "again"]
    assert main(["approve", str(plan.id), "--role", "technical_lead", "--operator", "dana", *reason]) == 2
    assert "you already signed plan #1 as QA" in capsys.readouterr().err  # break-glass: one person, one slot
    assert main(["repost", str(plan.id)]) == 0
    assert "0 refused message(s) queued again" in capsys.readouterr().out


def test_config_is_taken_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, roles={**ROLES, "qa": {"users": ["U0QA1", "U0QA2"]}})
    for argv in (
        ["--config", str(path), "check-config"],
        ["check-config", "--config", str(path)],
        ["--config", "/nonexistent.yaml", "check-config", "--config", str(path)],
    ):
        assert main(argv) == 0, capsys.readouterr().err
        assert capsys.readouterr().out == f"{path}: OK (1 environment(s), 7 role(s))\n"


def test_check_config_says_everything_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"migrations_dir": "nowhere", "channel": "#migrations"}
    path = write_config(
        tmp_path,
        environments={"production": env},
        roles={**ROLES, "qa": {"users": ["U0QA1"]}, "cto": {"users": ["@dana"]}},
        policy={"monitr": {}},
        serve={"modal_deadline_seconds": 5},
    )
    assert main(["check-config", "--config", str(path)]) == EXIT_USAGE
    err = one_answer(capsys)
    assert err.startswith("migrate-bot: invalid configuration:\n")
    for words in (
        "environments.production.migrations_dir:",
        "environments.production.channel: '#migrations' is not a Slack channel id",
        "roles.cto.users[0]: '@dana' is not a Slack user id",
        "policy.monitr: unknown setting",
        "serve.modal_deadline_seconds:",
    ):
        assert words in err


def test_check_config_notes_cells_that_hang_on_unread_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(write_config(tmp_path))]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "note:" in line]
    assert [n.split(": ")[1] for n in notes] == [
        "policy.approvals.production.low",
        "policy.approvals.production.medium",
    ]
    assert all("could not be fully checked" in n and "check-config --slack" in n for n in notes)


def test_check_config_slack_reads_groups_and_checks_the_matrix_with_them(
    tmp_path: Path, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    assert main(["check-config", "--slack", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out and "Slack: OK (token accepted; 1 user group(s) read)" in out
    assert [c.args["usergroup"] for c in slack.calls_to("usergroups.users.list")] == ["S0QA"]

    slack.group_members["S0QA"] = ["U0QA1"]
    assert main(["check-config", "--slack", "--config", str(path)]) == EXIT_USAGE
    assert (
        "policy.approvals.production.medium: can never be approved: QA and Load Testing both need a "
        "different qa holder, and qa has 1 member (U0QA1)"
    ) in one_answer(capsys)


def test_check_config_slack_names_a_group_it_cannot_read(
    tmp_path: Path, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, roles={**ROLES, "security": {"groups": ["S0SEC"]}})
    assert main(["check-config", "--slack", "--config", str(path)]) == EXIT_USAGE
    err = one_answer(capsys)
    assert "roles.security.groups: S0SEC: cannot read members (no_such_subteam)" in err
    assert "S0QA" not in err


@pytest.mark.parametrize("command", [["check-config", "--slack"], ["serve"]])
@pytest.mark.parametrize(
    ("token", "url", "words"),
    [
        ("xoxb-not-the-token", None, "SLACK_BOT_TOKEN: Slack refused the token (invalid_auth)"),
        (None, UNREACHABLE_SLACK, f"SLACK_API_URL: cannot reach Slack at {UNREACHABLE_SLACK}: "),
    ],
)
def test_a_token_slack_refuses_or_a_slack_out_of_reach_is_an_answer(
    command: list[str],
    token: str | None,
    url: str | None,
    words: str,
    tmp_path: Path,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", token or slack.token)
    monkeypatch.setenv("SLACK_API_URL", url or slack.api_url)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/state.db")
    assert main([*command, "--config", str(write_config(tmp_path))]) == EXIT_USAGE
    err = one_answer(capsys)
    assert words in err and "not-the-token" not in err
    assert not (tmp_path / "state.db").exists()  # serve stopped before opening its store


STORE_COMMANDS = [
    ["status", "1"],
    ["list"],
    ["approve", "1", "--role", "qa", "--operator", "dana", "--reason", "Slack is down"],
    ["db", "upgrade"],
    ["serve"],
]


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nonsense://", "not a usable database URL"),
        (f"postgresql://u:{PASSWORD}@h:notaport/db", "not a usable database URL"),
        (f"postgresql://u:{PASSWORD}@127.0.0.1:1/db", "cannot open the bot's store: connection failed"),
    ],
    ids=["unknown-driver", "bad-port", "unreachable"],
)
def test_a_store_that_cannot_be_opened_is_one_line(
    command: list[str],
    url: str,
    words: str,
    tmp_path: Path,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(write_config(tmp_path)))
    assert main(command) == EXIT_USAGE
    err = one_answer(capsys)
    assert err.startswith(f"migrate-bot: DATABASE_URL: {words}") and err.count("\n") == 1, err
    assert PASSWORD not in err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"environments:\n  production: {migrations_dir: \xff}\n", "not UTF-8 text (byte 0xff at offset 45)"),
        (
            b"- production\n- staging\n",
            "(top level): expected a mapping with an 'environments' key, not a list",
        ),
    ],
)
def test_a_config_that_cannot_be_a_config_is_an_answer(
    content: bytes, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert main(["status", "1", "--config", str(path)]) == EXIT_USAGE
    assert words in one_answer(capsys)


def test_a_plan_id_past_64_bits_is_not_a_plan_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("MIGRATE_BOT_CONFIG", str(write_config(tmp_path)))
    assert main(["status", "99999999999999999999999"]) == EXIT_USAGE
    assert "not a plan id" in one_answer(capsys)


@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (["status", "1"], {"DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"}, "DATABASE_URL: "),
        (["check-config"], {}, "not UTF-8 text"),
    ],
)
def test_no_traceback_reaches_stderr_of_the_process(
    argv: list[str], env: dict[str, str], words: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    if "DATABASE_URL" not in env:
        config.write_bytes(config.read_bytes() + b"# caf\xe9\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "MIGRATE_BOT_CONFIG": str(config), **env},
        timeout=60,
    )
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("migrate-bot: ") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr
