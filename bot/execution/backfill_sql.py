"""The queries of a batched backfill, made by editing the UPDATE's own parse tree and printing it (pglast).

Nothing is pasted together as text: a batch is the original UPDATE with one extra conjunct, a key range
on the primary key, and the queries that find each batch's upper bound and count the rows left select the
key from the same relation under the same WHERE. Each query has two forms: ``from_start`` (no lower
bound, for the first batch) and ``after_key`` (``$1`` is the last key done); their own parameters follow.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, LimitOption, SortByDir, SortByNulls

from bot.sql.nodes import given
from bot.sql.operations import sql_of, table_name, walk

BATCH_ALIAS = "batch"


@dataclass(frozen=True)
class KeyRangeSql:
    """One query in its two forms: from the table's first key, and after the key ``$1``."""

    from_start: str
    after_key: str

    def bind(self, after: Any, *params: Any) -> tuple[str, list[Any]]:
        """The form and parameters for a run that has done every key up to ``after`` (None: none yet)."""
        if after is None:
            return self.from_start, list(params)
        return self.after_key, [after, *params]


@dataclass(frozen=True)
class BatchSql:
    update: KeyRangeSql  # then ``upto``: the UPDATE restricted to keys in (after, upto]
    bound: KeyRangeSql  # then the batch size: selects the batch's last key, no row when none is left
    count: KeyRangeSql  # rows left to update
    estimate: KeyRangeSql  # EXPLAIN (FORMAT JSON) of the rows left: the planner's guess when counting is slow


def unbatchable_shape(node: ast.Node) -> str | None:
    """Why this statement cannot run in key ranges whatever its table's keys, or None when it can."""
    if not isinstance(node, ast.UpdateStmt):
        return f"only an UPDATE is batched, not {type(node).__name__.removesuffix('Stmt')}"
    if node.withClause:
        return "WITH: its queries would run again in every batch, seeing what earlier batches changed"
    if node.returningClause:
        return "RETURNING: the rows would come back batch by batch, not to one caller"
    if node.fromClause:
        # batching by the target's key would work, but every batch joins the other tables again, and a row
        # matching several join rows takes an arbitrary one: rewrite as a subquery in SET, then batch
        return "UPDATE … FROM joins other tables in every batch: write the join as a subquery in SET"
    if isinstance(node.whereClause, ast.CurrentOfExpr):
        return "WHERE CURRENT OF a cursor names one row: there is nothing to batch"
    table, name = table_name(node.relation), given(node.relation).relname
    read = (n for n in walk((node.targetList, node.whereClause)) if isinstance(n, ast.RangeVar))
    if any(n.relname == name for n in read):
        return f"reads {table} in a subquery: later batches would see what earlier ones changed"
    return None


def sets_column(node: ast.UpdateStmt, column: str) -> bool:
    return any(target.name == column for target in given(node.targetList))


def batch_sql(node: ast.UpdateStmt, key: str) -> BatchSql:
    """Every query of the backfill of ``node``, batched on its table's single-column primary key ``key``."""
    relation = given(node.relation)
    key_ref = _ref(given(relation.alias.aliasname if relation.alias else relation.relname), key)

    def forms(build: Callable[[bool], ast.Node]) -> KeyRangeSql:
        return KeyRangeSql(sql_of(build(False)), sql_of(build(True)))

    def update(after: bool) -> ast.UpdateStmt:
        batch = copy.copy(node)
        batch.whereClause = _and(node.whereClause, _key_range(key_ref, after, upto=True))
        return batch

    def matching(after: bool) -> ast.SelectStmt:
        return ast.SelectStmt(
            targetList=(ast.ResTarget(val=key_ref),),
            fromClause=(relation,),
            whereClause=_and(node.whereClause, _key_range(key_ref, after, upto=False)),
        )

    def bound(after: bool) -> ast.SelectStmt:
        batch = matching(after)
        batch.sortClause = (_sort(key_ref, SortByDir.SORTBY_ASC),)
        batch.limitCount, batch.limitOption = (
            ast.ParamRef(number=_first_free(after)),
            LimitOption.LIMIT_OPTION_COUNT,
        )
        last = _ref(BATCH_ALIAS, key)
        return ast.SelectStmt(
            targetList=(ast.ResTarget(val=last),),
            fromClause=(ast.RangeSubselect(subquery=batch, alias=ast.Alias(aliasname=BATCH_ALIAS)),),
            sortClause=(_sort(last, SortByDir.SORTBY_DESC),),
            limitCount=ast.A_Const(val=ast.Integer(ival=1)),
            limitOption=LimitOption.LIMIT_OPTION_COUNT,
        )

    def count(after: bool) -> ast.SelectStmt:
        return ast.SelectStmt(
            targetList=(
                ast.ResTarget(val=ast.FuncCall(funcname=(ast.String(sval="count"),), agg_star=True)),
            ),
            fromClause=(
                ast.RangeSubselect(subquery=matching(after), alias=ast.Alias(aliasname="rows_left")),
            ),
        )

    def estimate(after: bool) -> ast.ExplainStmt:
        options = (ast.DefElem(defname="format", arg=ast.String(sval="json")),)
        return ast.ExplainStmt(query=matching(after), options=options)

    return BatchSql(forms(update), forms(bound), forms(count), forms(estimate))


def _first_free(after: bool) -> int:
    """The number of the first parameter after the key range's lower bound, if any."""
    return 2 if after else 1


def _key_range(key: ast.ColumnRef, after: bool, *, upto: bool) -> ast.Node | None:
    """``key > $1`` when ``after``, and ``key <= $n`` (the next parameter) when ``upto``."""
    parts = []
    if after:
        parts.append(_compare(">", key, 1))
    if upto:
        parts.append(_compare("<=", key, _first_free(after)))
    return _and(*parts)


def _and(*conditions: ast.Node | None) -> ast.Node | None:
    present = tuple(c for c in conditions if c is not None)
    if len(present) < 2:
        return present[0] if present else None
    return ast.BoolExpr(boolop=BoolExprType.AND_EXPR, args=present)


def _compare(operator: str, key: ast.ColumnRef, param: int) -> ast.A_Expr:
    return ast.A_Expr(
        kind=A_Expr_Kind.AEXPR_OP,
        name=(ast.String(sval=operator),),
        lexpr=key,
        rexpr=ast.ParamRef(number=param),
    )


def _ref(*names: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=tuple(ast.String(sval=name) for name in names))


def _sort(node: ast.Node, direction: SortByDir) -> ast.SortBy:
    return ast.SortBy(node=node, sortby_dir=direction, sortby_nulls=SortByNulls.SORTBY_NULLS_DEFAULT)
