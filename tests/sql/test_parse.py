"""Input the parser would misread is refused with its line; a byte order mark is dropped."""

from __future__ import annotations

import pytest

from bot.sql.model import SqlSyntaxError, UnreadableSql
from bot.sql.parse import parse_statements


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT 1;\n\x00DROP TABLE t;", "line 2, column 1: control character U+0000"),
        ("SELECT 1;\nSELECT '\x1b';", "line 2, column 9: control character U+001B"),
        ("-- nothing here\n/* nor here */\n", "line 1, column 1: no SQL statements"),
        ("SELECT 1;\n\\set ON_ERROR_STOP on\nSELECT 2;", "line 2, column 1: psql meta-command `\\set`"),
        ("SELECT 1; \\gexec", "line 1, column 11: psql meta-command `\\gexec`"),
    ],
)
def test_what_pglast_would_misread_is_refused_with_its_line(sql: str, words: str) -> None:
    with pytest.raises(UnreadableSql) as info:
        parse_statements(sql)
    assert str(info.value).startswith(words)
    assert isinstance(info.value, SqlSyntaxError)  # refused wherever a syntax error is


def test_a_byte_order_mark_is_dropped_and_white_space_kept() -> None:
    parsed = parse_statements("\ufeffSELECT 1;\n\tSELECT\f2;\r\n")
    assert [(p.statement.sql, p.statement.line) for p in parsed] == [("SELECT 1", 1), ("SELECT\f2", 2)]
