"""Keeping Python's cycle collector out of the way of work whose objects live until it ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while a plan is drafted or rendered (and, on the CLI, while its modules
    load): the pass allocates a few objects per statement that live until the plan is rendered, and the
    collector would walk all of them again and again (half the time a 10 MB file takes); the pass makes
    few cycles, collected once it is back on. Left off if it was off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
