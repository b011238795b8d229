"""Transactions as PostgreSQL runs the file: what fails inside BEGIN … COMMIT, what a block throws away.

``transaction_hazards`` judges an operation where it stands, before ``advance`` records what it changed;
``left_open`` judges the end of the file.
"""

from __future__ import annotations

from pglast import ast

from bot.sql.context import FileContext
from bot.sql.model import Code, Hazard, Kind, Level, Operation
from bot.sql.nodes import walk

OPENERS = {"begin", "start"}
COMMITS = {"commit", "prepare"}  # PREPARE TRANSACTION ends the block too, keeping its work for later
ROLLBACKS = {"rollback"}


def _hazard(code: Code, severity: Level, message: str, alternative: str, op: Operation) -> Hazard:
    return Hazard(code, severity, message, alternative, op.statement_index, op.table)


def transaction_hazards(op: Operation, ctx: FileContext) -> list[Hazard]:
    """What goes wrong with ``op`` because of the transaction block it stands in."""
    block = ctx.transaction
    if block is None:
        return []
    if op.kind is Kind.TRANSACTION and op.details["transaction"] in OPENERS:
        return [
            _hazard(
                Code.NESTED_TRANSACTION,
                Level.HIGH,
                f"BEGIN inside the block opened by statement {block.begin.statement_index + 1} is ignored "
                '(PostgreSQL warns "there is already a transaction in progress"): the first COMMIT ends the '
                "whole block, and the statements after it run each in its own transaction",
                "one BEGIN … COMMIT per block; use SAVEPOINT for a part that may be rolled back alone",
                op,
            )
        ]
    if not op.transactional:
        concurrent = bool(op.details.get("concurrent"))
        return [
            _hazard(
                Code.CONCURRENTLY_IN_TRANSACTION if concurrent else Code.CANNOT_RUN_IN_TRANSACTION,
                Level.HIGH,
                f"{op.summary} inside BEGIN … COMMIT: PostgreSQL refuses it "
                '("cannot run inside a transaction block") and the migration fails',
                f"move {op.summary} out of the transaction block, into its own migration",
                op,
            )
        ]
    if op.kind is Kind.VALIDATE_CONSTRAINT and op.details["constraint"] in block.not_valid:
        added = block.not_valid[op.details["constraint"]]
        return [
            _hazard(
                Code.VALIDATE_IN_SAME_TRANSACTION,
                Level.MEDIUM,
                f"{op.summary} in the same transaction as its ADD … NOT VALID: the {added.lock.value} lock "
                "taken to add it is still held while every row is checked, so NOT VALID gains nothing",
                "COMMIT after ADD … NOT VALID, and VALIDATE CONSTRAINT in a transaction of its own "
                "(SHARE UPDATE EXCLUSIVE: reads and writes continue)",
                op,
            )
        ]
    return []


def enum_value_hazards(node: ast.Node, statement_index: int, ctx: FileContext) -> list[Hazard]:
    """A new enum value used before the transaction that added it commits: PostgreSQL refuses it."""
    block = ctx.transaction
    if block is None or not block.enum_values:
        return []
    used = {
        str(c.val.sval) for c in walk(node) if isinstance(c, ast.A_Const) and isinstance(c.val, ast.String)
    } & block.enum_values.keys()
    return [
        Hazard(
            Code.ENUM_VALUE_USED_IN_TRANSACTION,
            Level.HIGH,
            f"'{value}' is added to {block.enum_values[value]} in this transaction and used before it "
            'commits: PostgreSQL refuses it ("unsafe use of new value") and the migration fails',
            "COMMIT after ALTER TYPE … ADD VALUE, and use the value in a later transaction",
            statement_index,
            None,
        )
        for value in sorted(used)
    ]


def advance(op: Operation, ctx: FileContext) -> None:
    """Record what ``op`` does to the transaction and its settings."""
    if op.kind is Kind.TRANSACTION:
        kind = op.details["transaction"]
        if kind in OPENERS and ctx.transaction is None:
            ctx.begin(op)
        elif kind in COMMITS | ROLLBACKS:
            ctx.end(committed=kind in COMMITS)
    elif op.kind is Kind.SET_SETTING:
        ctx.set(op)
    elif ctx.transaction is not None and op.kind is Kind.ADD_ENUM_VALUE:
        ctx.transaction.enum_values[op.details["value"]] = op.details["type"]
    elif ctx.transaction is not None and op.kind is Kind.ADD_CONSTRAINT and op.details["not_valid"]:
        ctx.transaction.not_valid[op.details["constraint"]] = op


def left_open(ctx: FileContext) -> list[Hazard]:
    """A BEGIN never committed: its work is rolled back when the session ends."""
    if ctx.transaction is None:
        return []
    return [
        _hazard(
            Code.TRANSACTION_LEFT_OPEN,
            Level.HIGH,
            "this BEGIN is never committed: psql and most tools roll its work back when the session ends, "
            "and the statements after it in a later file would run inside it",
            "end the file with COMMIT",
            ctx.transaction.begin,
        )
    ]
