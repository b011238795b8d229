"""Split a migration file into statements with PostgreSQL's own parser (pglast).

What pglast would misread is refused first, with its line: a NUL byte ends the text pglast sees (so what
follows it would go unanalysed), other control characters, psql's meta-commands, a file of comments only.
A UTF-8 byte order mark is dropped, as editors add it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

from pglast import ast, parse_sql
from pglast.parser import ParseError

from bot.sql.model import Operation, SqlSyntaxError, Statement, UnreadableSql
from bot.sql.operations import OperationMapper

BOM = "\ufeff"
# C0 controls but tab, newline, vertical tab, form feed and carriage return (SQL's white space), and DEL
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedStatement:
    """A statement with its parse tree; the tree stays in memory, only ``statement`` is stored."""

    statement: Statement
    node: ast.Node

    @cached_property
    def operations(self) -> list[Operation]:
        """What the statement does, mapped once for both the analysis and the rollback."""
        return OperationMapper(self.statement).map(self.node)


class _Lines:
    """Offset -> (line, column) by binary search over line starts: linear in the file, not quadratic."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def parse_statements(sql: str) -> list[ParsedStatement]:
    """Statements of ``sql`` in order, each with its 1-based line span; raises SqlSyntaxError (or its
    UnreadableSql) with the line and column."""
    sql = sql.removeprefix(BOM)
    lines = _Lines(sql)
    control = CONTROL.search(sql)
    if control is not None:
        line, column = lines.at(control.start())
        raise UnreadableSql(f"control character U+{ord(control.group()):04X}", line, column)
    try:
        raw_statements = parse_sql(sql)
    except ParseError as err:
        message, offset = err.args[0], err.args[1] if len(err.args) > 1 else 0
        line, column = lines.at(min(offset, len(sql)))
        if sql[offset : offset + 1] == "\\":
            command = sql[offset:].split(maxsplit=1)[0]
            raise UnreadableSql(
                f"psql meta-command `{command}`: the bot runs SQL statements only, remove it", line, column
            ) from None
        raise SqlSyntaxError(str(message), line, column) from None
    if not raw_statements:
        raise UnreadableSql("no SQL statements (only comments or white space)", 1, 1)
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
