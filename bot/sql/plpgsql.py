"""What a PL/pgSQL block runs that the analysis can read: its plain SQL statements, and where it cannot.

pglast parses PL/pgSQL; each embedded statement comes back with its line, so the analysis can judge it
like a statement of the file. ``EXECUTE`` of a built string is dynamic SQL: only its line is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pglast import parse_plpgsql
from pglast.parser import ParseError

from bot.sql.model import Statement

_TAG = "$migrate_bot_body$"
# PL/pgSQL statements whose SQL is built at run time.
DYNAMIC = {"PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"}
ASSIGNMENTS = {3, 4, 5}  # pglast's RAW_PARSE_PLPGSQL_ASSIGN1..3: ``target := expression``


@dataclass
class BlockContents:
    """What a PL/pgSQL body holds: its plain SQL statements, and where it builds SQL at run time."""

    statements: list[tuple[int, str]] = field(default_factory=list)  # (line in the file, SQL)
    dynamic: list[int] = field(default_factory=list)  # lines of dynamic SQL


def block_contents(statement: Statement, body: str) -> BlockContents | None:
    """The SQL a DO block's ``body`` runs, with lines in the file; None when it does not parse."""
    try:
        tree = parse_plpgsql(f"DO {_TAG}{body}{_TAG}")
    except ParseError:
        return None
    at = statement.sql.find(body)
    first = statement.line + (statement.sql.count("\n", 0, at) if at >= 0 else 0)
    contents = BlockContents()
    _collect(tree, first, 0, contents)
    return contents


def _collect(node: Any, first: int, lineno: int, out: BlockContents) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, first, lineno, out)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if not isinstance(value, dict | list):
            continue
        line = value.get("lineno", lineno) if isinstance(value, dict) else lineno
        if key in DYNAMIC:
            out.dynamic.append(first + line - 1)
            continue
        if key == "PLpgSQL_expr" and isinstance(value, dict):
            query = value.get("query", "")
            # parseMode 0 is a whole statement; others are expressions, read as a SELECT of them
            out.statements.append(
                (first + lineno - 1, query if value.get("parseMode") == 0 else f"SELECT {query}")
            )
            continue
        _collect(value, first, line, out)


def _as_statement(expr: dict[str, Any]) -> str:
    """A PL/pgSQL expression as SQL: a whole statement as it is, an expression or assignment as its SELECT."""
    query, mode = str(expr.get("query", "")), expr.get("parseMode", 0)
    if mode == 0:
        return query
    if mode in ASSIGNMENTS:
        query = re.split(r":=|=", query, maxsplit=1)[-1]
    return f"SELECT {query}"
