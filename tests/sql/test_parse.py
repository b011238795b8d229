"""Input the parser would misread is refused with its line; a byte order mark is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from pglast import ast, parse_sql

from bot.sql.model import SqlSyntaxError, UnreadableSql
from bot.sql.parse import BATCH, iter_statements, parse_statements


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


def _example_files() -> list[Path]:
    return sorted((Path(__file__).parents[2] / "examples").rglob("*.sql"))


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.name)
def test_statements_parsed_in_batches_are_the_trees_pglast_checks(path: Path) -> None:
    """The batches skip pglast's per-attribute type checks (bot.sql.parse._unchecked_nodes): the trees must
    be the very ones a checked parse builds, Booleans included, and the checks back on afterwards."""
    sql = path.read_text().removeprefix("\ufeff")
    assert [p.node for p in iter_statements(sql)] == [raw.stmt for raw in parse_sql(sql)]
    with pytest.raises(ValueError):
        ast.Boolean(boolval="yes")  # type: ignore[arg-type]  # checked again once parsed


def test_a_file_longer_than_a_batch_keeps_its_lines_and_order() -> None:
    sql = "".join(f"-- {i}\nSELECT {i} = 1 AND true;\n" for i in range(BATCH * 2 + 3))
    parsed = list(iter_statements(sql))
    assert [p.statement.index for p in parsed] == list(range(BATCH * 2 + 3))
    assert (parsed[-1].statement.line, parsed[BATCH].statement.line) == (2 * (BATCH * 2 + 3), 2 * BATCH + 2)
    assert parsed[-1].node == parse_sql(f"SELECT {BATCH * 2 + 2} = 1 AND true")[0].stmt
