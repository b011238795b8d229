"""Which column type changes PostgreSQL makes without rewriting the table (binary-coercible widenings).

Only the common, certain cases: longer or unlimited varchar, varchar to text, more numeric precision at
the same scale. Anything else counts as a rewrite, which is what PostgreSQL does for most changes.
"""

from __future__ import annotations

import re

_ALIASES = {"character varying": "varchar", "decimal": "numeric"}
_TYPE = re.compile(r"^\s*(?:pg_catalog\.)?([a-z ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


def _parse(type_sql: str) -> tuple[str, int | None, int | None] | None:
    match = _TYPE.match(type_sql.lower())
    if match is None:
        return None
    name, first, second = match.groups()
    return (
        _ALIASES.get(name, name),
        int(first) if first else None,
        int(second) if second else (0 if name in {"numeric", "decimal"} and first else None),
    )


def rewrites(old_type: str, new_type: str) -> bool:
    """False only when changing ``old_type`` to ``new_type`` is known to keep every row as it is."""
    old, new = _parse(old_type), _parse(new_type)
    if old is None or new is None:
        return True
    (old_name, old_len, old_scale), (new_name, new_len, new_scale) = old, new
    if old == new:
        return False
    unlimited = new_name == "text" or (new_name == "varchar" and new_len is None)
    if old_name in {"varchar", "text"} and unlimited:
        return False
    if old_name == "varchar" and new_name == "varchar":
        return not (new_len is None or (old_len is not None and new_len >= old_len))
    if old_name == "numeric" and new_name == "numeric":
        if new_len is None:
            return False
        return not (old_len is not None and new_len >= old_len and new_scale == old_scale)
    return True
