"""Block Kit limits, checked before anything is sent: Slack refuses (or cuts) what breaks them.

slack_sdk's models check most element limits; the limits they do not check (blocks per message, ids
unique within a message, top-level text) are checked here, and every error names the path of the
offending field.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
MESSAGE_TEXT = 40_000
SECTION_TEXT = 3000
HEADER_TEXT = 150
FIELDS = 10
FIELD_TEXT = 2000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
MODAL_TITLE = 24
PRIVATE_METADATA = 3000


class BlockKitError(ValueError):
    """A payload Slack would refuse; the message names the field and the limit."""


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_length(path: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise BlockKitError(f"{path}: {len(value)} > {limit} characters")


def _text(obj: dict[str, Any] | None) -> str | None:
    return obj.get("text") if isinstance(obj, dict) else None


def _check_block(path: str, block: dict[str, Any], ids: set[str]) -> None:
    kind = block.get("type")
    block_id = block.get("block_id")
    if block_id is not None:
        _check_length(f"{path}.block_id", block_id, ID_LENGTH)
        if block_id in ids:
            raise BlockKitError(f"{path}.block_id: {block_id!r} is used twice")
        ids.add(block_id)
    if kind == "section":
        if block.get("text") is None and not block.get("fields"):
            raise BlockKitError(f"{path}: a section needs text or fields")
        _check_length(f"{path}.text.text", _text(block.get("text")), SECTION_TEXT)
        fields = block.get("fields") or []
        if len(fields) > FIELDS:
            raise BlockKitError(f"{path}.fields: {len(fields)} > {FIELDS} fields")
        for i, field in enumerate(fields):
            _check_length(f"{path}.fields[{i}].text", _text(field), FIELD_TEXT)
    elif kind == "header":
        _check_length(f"{path}.text.text", _text(block.get("text")), HEADER_TEXT)
    elif kind == "context" and len(block.get("elements") or []) > CONTEXT_ELEMENTS:
        raise BlockKitError(f"{path}.elements: more than {CONTEXT_ELEMENTS} elements")
    elif kind == "actions":
        elements = block.get("elements") or []
        if len(elements) > ACTIONS_ELEMENTS:
            raise BlockKitError(f"{path}.elements: more than {ACTIONS_ELEMENTS} elements")
        for i, element in enumerate(elements):
            where = f"{path}.elements[{i}]"
            action_id = element.get("action_id")
            _check_length(f"{where}.action_id", action_id, ID_LENGTH)
            if action_id is not None:
                if action_id in ids:
                    raise BlockKitError(f"{where}.action_id: {action_id!r} is used twice")
                ids.add(action_id)
            if element.get("type") == "button":
                _check_length(f"{where}.text.text", _text(element.get("text")), BUTTON_TEXT)
                _check_length(f"{where}.value", element.get("value"), BUTTON_VALUE)
    try:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    except (SlackObjectFormationError, AttributeError, KeyError, TypeError) as err:
        raise BlockKitError(f"{path}: {err}") from None


def validate_blocks(blocks: list[dict[str, Any]], limit: int, path: str = "blocks") -> None:
    if len(blocks) > limit:
        raise BlockKitError(f"{path}: {len(blocks)} > {limit} blocks")
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            raise BlockKitError(f"{path}[{i}]: not a block")
        _check_block(f"{path}[{i}]", block, ids)


def validate_message(*, text: str, blocks: list[dict[str, Any]] | None) -> None:
    """Raise BlockKitError unless Slack would accept this message as it is."""
    if not blocks and not (text or "").strip():
        raise BlockKitError("text: a message without blocks needs text")
    _check_length("text", text, MESSAGE_TEXT)
    if blocks:
        validate_blocks(blocks, MESSAGE_BLOCKS)


def validate_view(view: dict[str, Any]) -> None:
    """Raise BlockKitError unless Slack would open this modal."""
    for key in ("title", "submit", "close"):
        _check_length(f"view.{key}.text", _text(view.get(key)), MODAL_TITLE)
    _check_length("view.private_metadata", view.get("private_metadata"), PRIVATE_METADATA)
    _check_length("view.callback_id", view.get("callback_id"), ID_LENGTH)
    validate_blocks(view.get("blocks") or [], MODAL_BLOCKS, "view.blocks")
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, TypeError) as err:
        raise BlockKitError(f"view: {err}") from None
