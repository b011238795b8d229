"""Reading pglast parse trees: names as SQL writes them, types, options by their value, relations read.

Shared by the operation mapper and the rollback generator, so that both quote and name things alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TypeVar

from pglast import ast
from pglast.stream import RawStream, maybe_double_quote_name

T = TypeVar("T")


def given(value: T | None) -> T:
    """A field pglast types as optional (every field is), read where the grammar always fills it."""
    if value is None:
        raise ValueError("a parse tree without a field its grammar always fills")
    return value


# Entries of each cache below, as ``_quoted``'s: bounded, since a 10 MB file may hold 200,000 distinct
# constants and a bot's worker plans file after file for days.
CACHE_ENTRIES = 4096
_CONSTANT_SQL: dict[tuple[object, ...], str] = {}


def _remembered(
    cache: dict[tuple[object, ...], str], key: tuple[object, ...], make: Callable[[], str]
) -> str:
    """``cache[key]``, made once; a full cache starts over."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= CACHE_ENTRIES:
            cache.clear()
        found = cache[key] = make()
    return found


def sql_of(node: ast.Node) -> str:
    """A node printed back as SQL, quoted where PostgreSQL needs it; a constant once per value, since
    pglast's printer is slow and a migration sets the same few defaults over and over."""
    if isinstance(node, ast.A_Const) and node.val is not None:
        value = node.val
        key = (type(value), *(getattr(value, name) for name in value))  # a node iterates its fields
        return _remembered(_CONSTANT_SQL, key, lambda: str(RawStream()(node)))
    return str(RawStream()(node))


def names_of(items: Any) -> list[str]:
    """The unquoted parts of a dotted name (``schema``, ``name`` …)."""
    return [item.sval or "" for item in items or () if isinstance(item, ast.String)]


def quoted(names: list[str] | tuple[str | None, ...]) -> str:
    """Name parts joined as SQL writes them: ``app."Mood"``, never ``app.Mood``."""
    return _quoted(tuple(names))


@lru_cache(maxsize=CACHE_ENTRIES)
def _quoted(names: tuple[str | None, ...]) -> str:
    """Cached, since a migration names the same few tables over and over; bounded, since a 10 MB file may
    name 200,000 (held for good, they took 40 MB of its plan's memory) and a bot plans many files."""
    return ".".join(maybe_double_quote_name(part) for part in names if part)


def table_name(rv: ast.RangeVar | None) -> str:
    """``schema.table`` as SQL would write it, quoted where needed (of a statement that names one)."""
    rv = given(rv)
    return quoted((rv.schemaname, rv.relname))


_TYPE_SQL: dict[tuple[object, ...], str] = {}


def type_name(node: ast.TypeName) -> str:
    """A type as SQL prints it; cached, since a migration names the same few types over and over."""
    mods = tuple(getattr(getattr(m, "val", None), "ival", m) for m in node.typmods or ())
    if any(isinstance(m, ast.Node) for m in mods):
        return sql_of(node)  # an expression modifier: rare, not worth a key
    key = (tuple(names_of(node.names)), mods, len(node.arrayBounds or ()), node.setof, node.pct_type)
    return _remembered(_TYPE_SQL, key, lambda: sql_of(node))


def _holds_nodes(py_type: Any) -> bool:
    types = py_type if isinstance(py_type, tuple) else (py_type,)
    return any(t in (list, tuple) or (isinstance(t, type) and issubclass(t, ast.Node)) for t in types)


_CHILDREN: dict[type, tuple[str, ...]] = {}


def _children(cls: type) -> tuple[str, ...]:
    """The attributes of a node type that can hold nodes (not names, flags or numbers), cached per type."""
    names = _CHILDREN.get(cls)
    if names is None:
        slots = getattr(cls, "__slots__", {})
        names = _CHILDREN[cls] = tuple(n for n, info in slots.items() if _holds_nodes(info.py_type))
    return names


def walk(node: Any) -> Iterator[ast.Node]:
    """Every node of a parse tree, depth first, in the order written."""
    stack = [node]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        if isinstance(item, ast.Node):
            yield item
            for name in reversed(_children(type(item))):  # a loop, not a generator: mapping walks a lot
                child = getattr(item, name)
                if child is not None:
                    push(child)
        elif isinstance(item, tuple):
            extend(reversed(item))


_FALSE = {"false", "off", "no", "0"}


def option_on(options: Any, name: str) -> bool:
    """Whether a boolean option is on, read by its value as PostgreSQL's defGetBoolean does.

    ``(FULL)`` and ``(FULL true)`` are on, ``(FULL false)``, ``(FULL off)`` and ``(FULL 0)`` are off.
    """
    for option in options or ():
        if option.defname != name:
            continue
        arg = option.arg
        if arg is None:
            return True
        if isinstance(arg, ast.Boolean):
            return bool(arg.boolval)
        if isinstance(arg, ast.Integer):
            return arg.ival != 0
        return str(getattr(arg, "sval", "true")).lower() not in _FALSE
    return False


def read_relations(node: ast.Node, skip: ast.RangeVar | None = None) -> list[str]:
    """Relations a statement reads (FROM, JOIN, subqueries), leaving out CTE names and ``skip``."""
    nodes = list(walk(node))  # walked once for both
    ctes = {c.ctename for c in nodes if isinstance(c, ast.CommonTableExpr)}
    found = [
        table_name(rv)
        for rv in nodes
        if isinstance(rv, ast.RangeVar)
        and rv is not skip
        and not (rv.schemaname is None and rv.relname in ctes)
    ]
    return list(dict.fromkeys(found))


def function_names(node: ast.Node) -> list[str]:
    """Functions a statement calls, as written (``app.f``)."""
    return list(
        dict.fromkeys(quoted(names_of(f.funcname)) for f in walk(node) if isinstance(f, ast.FuncCall))
    )
