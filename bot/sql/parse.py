"""Split a migration file into statements with PostgreSQL's own parser (pglast).

What pglast would misread is refused first, with its line: a NUL byte ends the text pglast sees (so what
follows it would go unanalysed), other control characters, psql's meta-commands, a file of comments only.
A UTF-8 byte order mark is dropped, as editors add it.

The file is split first (one pass of the C parser, which finds every syntax error) and its statements are
parsed into Python objects a batch at a time, when asked for, so a caller that analyses statement by
statement holds a few parse trees at a time, not a whole 10 MB file's.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from pglast import ast, parse_sql
from pglast.parser import ParseError, split

from bot.sql.model import Operation, SqlSyntaxError, Statement, UnreadableSql
from bot.sql.nodes import given
from bot.sql.operations import OperationMapper

BOM = "\ufeff"
# C0 controls but tab, newline, vertical tab, form feed and carriage return (SQL's white space), and DEL
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# Statements parsed into Python objects at once: few enough to hold, many enough to call pglast seldom.
BATCH = 500


@dataclass(frozen=True)
class ParsedStatement:
    """A statement with its parse tree; the tree stays in memory, only ``statement`` is stored."""

    statement: Statement
    node: ast.Node

    @cached_property
    def operations(self) -> list[Operation]:
        """What the statement does, mapped once for both the analysis and the rollback."""
        return OperationMapper(self.statement).map(self.node)


def _position(sql: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset``."""
    return sql.count("\n", 0, offset) + 1, offset - sql.rfind("\n", 0, offset)


def parse_statements(sql: str) -> list[ParsedStatement]:
    """Statements of ``sql`` in order, each with its 1-based line span; raises SqlSyntaxError (or its
    UnreadableSql) with the line and column."""
    return list(iter_statements(sql))


def iter_statements(sql: str) -> Iterator[ParsedStatement]:
    """``parse_statements`` one statement at a time. The whole file is checked before this returns: a
    syntax error anywhere is raised here, never halfway through the iteration."""
    sql = sql.removeprefix(BOM)
    control = CONTROL.search(sql)
    if control is not None:
        line, column = _position(sql, control.start())
        raise UnreadableSql(f"control character U+{ord(control.group()):04X}", line, column)
    try:
        spans = split(sql, with_parser=True, only_slices=True)
    except ParseError as err:
        message, offset = err.args[0], min(err.args[1] if len(err.args) > 1 else 0, len(sql))
        line, column = _position(sql, offset)
        if sql[offset : offset + 1] == "\\":
            command = sql[offset:].split(maxsplit=1)[0]
            raise UnreadableSql(
                f"psql meta-command `{command}`: the bot runs SQL statements only, remove it", line, column
            ) from None
        raise SqlSyntaxError(str(message), line, column) from None
    if not spans:
        raise UnreadableSql("no SQL statements (only comments or white space)", 1, 1)
    return _parsed(sql, spans)


def _parsed(sql: str, spans: tuple[slice, ...]) -> Iterator[ParsedStatement]:
    line, at = 1, 0  # lines counted from one statement to the next: linear in the file
    for first in range(0, len(spans), BATCH):
        batch = spans[first : first + BATCH]
        with _unchecked_nodes():
            raws = parse_sql(sql[batch[0].start : batch[-1].stop])
        for index, span, raw in zip(range(first, first + len(batch)), batch, raws, strict=True):
            line += sql.count("\n", at, span.start)
            at = span.start
            text = sql[span]
            newlines = text.count("\n")  # none: its last line is its first, one number for both
            end = line + newlines if newlines else line
            yield ParsedStatement(Statement(index, text, line, end), given(raw.stmt))


_CHECKED_SETATTR = ast.Node.__setattr__
_UNCHECKED = threading.Lock()


@contextmanager
def _unchecked_nodes() -> Iterator[None]:
    """pglast checks, in Python, every attribute of every node its C parser builds against the attribute's
    declared type, and that is two thirds of parsing a large file. The values the parser passes are of those
    types already, but for ``Boolean.boolval`` (an int the check makes a bool): while parsing, nodes are set
    plainly but Booleans. tests/sql/test_parse.py proves the trees the same on every SQL text of the tests.

    Nodes other threads build meanwhile are set plainly too: the bot's own (bot.execution.backfill_sql) are
    built of values of the declared types. The lock keeps two parses from restoring each other's patch.
    """
    with _UNCHECKED:
        ast.Node.__setattr__ = object.__setattr__  # type: ignore[method-assign,assignment]
        ast.Boolean.__setattr__ = _CHECKED_SETATTR  # type: ignore[method-assign]
        try:
            yield
        finally:
            ast.Node.__setattr__ = _CHECKED_SETATTR  # type: ignore[method-assign]
            del ast.Boolean.__setattr__
