"""Split a migration file into statements with PostgreSQL's own parser (pglast)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError

from bot.sql.model import SqlSyntaxError, Statement


@dataclass(frozen=True)
class ParsedStatement:
    """A statement with its parse tree; the tree stays in memory, only ``statement`` is stored."""

    statement: Statement
    node: ast.Node


class _Lines:
    """Offset -> (line, column) by binary search over line starts: linear in the file, not quadratic."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def parse_statements(sql: str) -> list[ParsedStatement]:
    """Statements of ``sql`` in order, each with its 1-based line span; raises SqlSyntaxError."""
    try:
        raw_statements = parse_sql(sql)
    except ParseError as err:
        message, offset = err.args[0], err.args[1] if len(err.args) > 1 else 0
        line, column = _Lines(sql).at(min(offset, len(sql)))
        raise SqlSyntaxError(str(message), line, column) from None
    lines = _Lines(sql)
    parsed = []
    for index, raw in enumerate(raw_statements):
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        text = sql[start:end].strip()
        # the location points after any leading comment; report where the statement's own text begins
        start += len(sql[start:end]) - len(sql[start:end].lstrip())
        line, _ = lines.at(start)
        end_line = line + text.count("\n")
        parsed.append(ParsedStatement(Statement(index, text, line, end_line), raw.stmt))
    return parsed
