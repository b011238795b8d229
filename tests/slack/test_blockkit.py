"""Block Kit limits: one over the limit is refused with the field's path, at the limit passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import planning_only_config
from bot.drafting import draft_plan
from bot.notifier import PlanView
from bot.sql.catalog import OfflineCatalog
from handlers.blockkit import BlockKitError, truncate, validate_message, validate_view
from handlers.blocks import approve_as_modal, changes_modal, plan_blocks, reject_modal


def section(text: str, block_id: str = "s") -> dict:
    return {"type": "section", "block_id": block_id, "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, text: str = "Go", value: str = "1") -> dict:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


@pytest.mark.parametrize(
    ("blocks", "ok", "path"),
    [
        ([section("x" * 3000)], True, ""),
        ([section("x" * 3001)], False, "blocks[0].text.text: 3001 > 3000"),
        ([section(str(i), f"b{i}") for i in range(50)], True, ""),
        ([section(str(i), f"b{i}") for i in range(51)], False, "blocks: 51 > 50 blocks"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            False,
            "blocks[0].text.text: 151",
        ),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], False, "11 > 10 fields"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            False,
            "fields[0].text: 2001",
        ),
        ([section("a", "dup"), section("b", "dup")], False, "blocks[1].block_id: 'dup' is used twice"),
        ([{"type": "actions", "elements": [button("a", "t" * 76)]}], False, "elements[0].text.text: 76 > 75"),
        (
            [{"type": "actions", "elements": [button("a", value="v" * 2001)]}],
            False,
            "elements[0].value: 2001",
        ),
        ([{"type": "actions", "elements": [button("a"), button("a")]}], False, "'a' is used twice"),
        ([{"type": "section"}], False, "a section needs text or fields"),
    ],
)
def test_message_limits(blocks: list[dict], ok: bool, path: str) -> None:
    if ok:
        validate_message(text="fallback", blocks=blocks)
        return
    with pytest.raises(BlockKitError, match=re.escape(path)):
        validate_message(text="fallback", blocks=blocks)


def test_text_limits() -> None:
    validate_message(text="x" * 40_000, blocks=None)
    with pytest.raises(BlockKitError, match="text: 40001 > 40000"):
        validate_message(text="x" * 40_001, blocks=None)
    with pytest.raises(BlockKitError, match="needs text"):
        validate_message(text=" ", blocks=None)
    assert truncate("abcdef", 4) == "abc…" and truncate("abc", 4) == "abc"


def test_modal_limits() -> None:
    view = reject_modal(12)
    validate_view(view)
    with pytest.raises(BlockKitError, match=re.escape("view.title.text: 25 > 24")):
        validate_view({**view, "title": {"type": "plain_text", "text": "t" * 25}})
    with pytest.raises(BlockKitError, match=re.escape("view.private_metadata: 3001 > 3000")):
        validate_view({**view, "private_metadata": "m" * 3001})


def test_the_bots_own_payloads_are_valid(tmp_path: Path) -> None:
    """Every plan of the examples, and every modal, passes (long lists are cut, never refused)."""
    examples = Path(__file__).resolve().parents[2] / "examples" / "migrations"
    config = planning_only_config(examples)
    for path in sorted(examples.glob("0*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        draft = draft_plan(config, None, path.name, catalog=OfflineCatalog(None))
        validate_message(text="plan", blocks=plan_blocks(PlanView.of_draft(draft, config.rules)))
    many = tmp_path / "many.sql"
    many.write_text("".join(f"ALTER TABLE t{i} DROP COLUMN c;\n" for i in range(400)))
    draft = draft_plan(planning_only_config(tmp_path), None, "many.sql", catalog=OfflineCatalog(None))
    blocks = plan_blocks(PlanView.of_draft(draft, config.rules))
    validate_message(text="plan", blocks=blocks)
    assert "…and 388 more" in str(blocks)
    for view in (changes_modal(3), approve_as_modal(3, [])):
        validate_view(view)
