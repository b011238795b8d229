"""The plan as JSON, for CI pipelines and tests that compare front ends: written in pieces, never whole.

Apart from the renderers for people (``bot.report``) so that ``migrate-bot plan --format json`` loads none
of what they need.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from itertools import islice
from typing import TYPE_CHECKING, Any

from bot.drafting import PlanDraft, rollback_to_dict

if TYPE_CHECKING:
    from bot.report import PlanMeta


def plan_dict(draft: PlanDraft, meta: PlanMeta | None = None, *, lazy: bool = False) -> dict[str, Any]:
    """The machine-readable plan: what CI pipelines consume, and what tests compare across front ends.

    ``lazy`` gives the lists that grow with the file as iterators, for ``json_pieces``.
    """
    return {
        "plan_id": meta.plan_id if meta else None,
        "state": meta.state if meta else None,
        "environment": draft.environment,
        "tier": draft.tier,
        "file": draft.migration.name,
        "sha256": draft.migration.sha256,
        "commit": draft.migration.commit or None,
        "complexity": draft.analysis.complexity.value,
        "analysis": draft.analysis.to_dict(lazy=lazy),
        "rollback": {
            **rollback_to_dict(draft.rollback, lazy=lazy),
            "sql": draft.rollback.sql,
            "sha256": draft.rollback_sha256,
            "complete": draft.rollback.complete,
        },
        "rollback_analysis": draft.rollback_analysis.to_dict(lazy=lazy) if draft.rollback_analysis else None,
        "requirement": asdict(draft.requirement),
    }


# no indent: json's C encoder only runs without one, and a 10,000-statement plan needs it
_JSON = json.JSONEncoder(ensure_ascii=False)
PIECE_CHARS = 1 << 20
JSON_BATCH = 500  # list items encoded at once


def json_pieces(draft: PlanDraft, meta: PlanMeta | None = None) -> Iterator[str]:
    """The plan as JSON text (``plan_dict``, as ``json.dumps`` writes it) in pieces of about a megabyte,
    each cut between two list items or inside a long string: a 10 MB migration's plan is 200 MB of JSON,
    which the CLI writes (and redacts) piece by piece instead of holding it whole, with each item's dict
    made only when written."""
    parts: list[str] = []
    size = 0
    for part in _json_parts(plan_dict(draft, meta, lazy=True)):
        parts.append(part)
        size += len(part)
        if size >= PIECE_CHARS:
            yield "".join(parts)
            parts, size = [], 0
    parts.append("\n")
    yield "".join(parts)


def _json_parts(value: object) -> Iterator[str]:
    """``json.dumps(value)`` in parts: a dict key by key, an iterator (a lazy list) item by item, a long
    string a megabyte at a time, anything else whole."""
    if isinstance(value, dict):
        yield "{"
        for position, (key, item) in enumerate(value.items()):
            yield f"{', ' if position else ''}{_JSON.encode(key)}: "
            yield from _json_parts(item)
        yield "}"
    elif isinstance(value, Iterator):
        yield "["
        separator = ""
        while batch := list(islice(value, JSON_BATCH)):  # one encoder call per batch: calls are costly
            yield separator + _JSON.encode(batch)[1:-1]
            separator = ", "
        yield "]"
    elif isinstance(value, str) and len(value) > PIECE_CHARS:
        # a string in parts (json escapes each character alone): a generated rollback of a 10 MB file is
        # 23 million characters, which encoded whole and joined into one piece took 100 MB more
        yield '"'
        for start in range(0, len(value), PIECE_CHARS):
            yield _JSON.encode(value[start : start + PIECE_CHARS])[1:-1]
        yield '"'
    else:
        yield _JSON.encode(value)
