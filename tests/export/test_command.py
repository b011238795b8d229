"""``migrate-bot timeline`` on the store of a plan that ran: a plan in each format, every plan of a period."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.export import Format, export_files, gather
from tests.export.conftest import AUTHOR, Ran


@pytest.fixture
def cli(completed: Ran, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The store and config the plan ran with, as the CLI takes them."""
    monkeypatch.setenv("DATABASE_URL", completed.services.settings.database_url)
    monkeypatch.delenv("MIGRATE_BOT_CONFIG", raising=False)
    return ["--config", str(tmp_path / "config.yaml")]


def test_one_plan_in_each_format_is_written_as_the_service_makes_it(
    completed: Ran, cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exports"
    with completed.services.db.session() as session:
        story = gather(session, completed.plan_id, completed.services.config)
    for fmt in Format:
        assert (
            main(["timeline", f"#{completed.plan_id}", "--format", fmt.value, "--out", str(out), *cli]) == 0
        )
        expected = export_files(story, fmt)
        written = capsys.readouterr().out.split()
        assert written == [str(out / f.name) for f in expected]
        assert [(out / f.name).read_bytes() for f in expected] == [f.content for f in expected]
    assert sorted(p.name for p in out.iterdir()) == [
        f"plan-{completed.plan_id}-timeline.{ext}" for ext in ("csv", "json", "md", "png")
    ]


def test_every_plan_of_a_period_is_exported_for_an_audit(
    completed: Ran, cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = completed.services.config.environment("production").migrations_dir
    (migrations / "055_unrun.sql").write_text("CREATE TABLE nchat.unrun (id int);\n")
    other = completed.services.planner.submit(
        env_name="production", file_arg="055_unrun.sql", author=AUTHOR, typed_in="C0"
    ).plan
    assert other is not None
    out = tmp_path / "audit"
    args = ["timeline", "--all", "--since", "2026-11-28", "--format", "json", "--out", str(out), *cli]
    assert main(args) == 0
    assert capsys.readouterr().out.split() == [
        str(out / f"plan-{plan}-timeline.json") for plan in (completed.plan_id, other.id)
    ]
    assert main([*args[:3], "2026-11-29", *args[4:]]) == 0  # nothing happened from then on
    assert capsys.readouterr().out == ""
    assert main([*args, "--until", "2026-11-28T01:00"]) == 0  # before anything happened either
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["timeline", "--all"], "--since DATE"),
        (["timeline", "1", "--all", "--since", "2026-11-01"], "a plan id, or --all"),
        (["timeline"], "a plan id, or --all"),
        (["timeline", "--all", "--since", "yesterday"], "a date like 2026-11-01"),
        (["timeline", "99"], "no plan #99"),
    ],
)
def test_a_wrong_ask_exits_2_with_what_to_give(
    args: list[str],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"environments": {"production": {"migrations_dir": str(tmp_path)}}}))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/state.db")
    assert main([*args, "--config", str(config)]) == 2
    assert said in capsys.readouterr().err
