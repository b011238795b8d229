"""Reads that end by their deadline even when what they wait for never answers.

A target that accepts the connection and never answers holds psycopg on its socket forever: it has no
deadline of its own once a query is sent, and a cancel goes to the same silent server. Python cannot stop
a thread, so each read runs in a worker thread that the caller waits for only until the deadline. A read
past it is abandoned: its interrupt is called (a SQL read shuts its socket down, which ends psycopg's
wait with an error at once; an HTTP read ends at its socket timeout, a connection attempt at
``connect_timeout``), and while that thread still runs the next read says so instead of starting another,
so a source never holds more than one stuck thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from bot.execution.output import shown

T = TypeVar("T")
DETAIL_LIMIT = 300  # characters of a sample's detail: a line or two in Slack


class Unreadable(Exception):
    """Why a read gave no value; its message is for people (``reason`` redacts and shortens it)."""


def reason(text: str) -> str:
    """``text`` redacted, on one line, short enough to show beside a sample."""
    return shown(" ".join(text.split()), limit=DETAIL_LIMIT)


class Attempt:
    """One read in flight, shared by the caller and its worker: when it must end, and how to wake it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._interrupt: Callable[[], None] | None = None
        self._abandoned = False

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def interruptible(self, interrupt: Callable[[], None] | None) -> None:
        """Set what wakes the worker (None: nothing to wake any more); run at once if already abandoned."""
        with self._lock:
            self._interrupt = interrupt
            if interrupt is not None and self._abandoned:
                interrupt()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            if self._interrupt is not None:
                self._interrupt()


class Bounded:
    """Runs one read at a time in a worker thread and waits for it until its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stuck: threading.Thread | None = None
        self._stuck_since = 0.0

    def run(self, read: Callable[[Attempt], T], seconds: float) -> T:
        """``read``'s value, or its exception; Unreadable when it has not returned within ``seconds``."""
        with self._lock:
            if self._stuck is not None and self._stuck.is_alive():
                raise Unreadable(
                    f"the read abandoned {time.monotonic() - self._stuck_since:.0f} s ago has still not "
                    "returned; no new read until it does"
                )
            self._stuck = None
        attempt = Attempt(seconds)
        outcome: list[tuple[bool, object]] = []

        def work() -> None:
            try:
                outcome.append((True, read(attempt)))
            except BaseException as err:
                outcome.append((False, err))

        worker = threading.Thread(target=work, name="monitor read", daemon=True)
        worker.start()
        worker.join(seconds)
        if not outcome:  # the worker may end between join and here: then it counts as late, not stuck
            attempt.abandon()
            with self._lock:
                self._stuck, self._stuck_since = worker, time.monotonic()
            raise Unreadable(f"no answer within {seconds:g} s")
        ok, value = outcome[0]
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]


def read_target(dsn: str, attempt: Attempt, work: Callable[[psycopg.Connection], T]) -> T:
    """``work`` in a read-only transaction on the target, under a ``statement_timeout`` ending just before
    the attempt's deadline, the socket handed to the attempt as its interrupt. Run inside Bounded.run.

    The settings are local to the transaction, so a pooler in transaction mode (pgbouncer) passes them to
    no other client; psycopg's errors become Unreadable with the server's words.
    """
    try:
        conn = psycopg.connect(
            dsn,
            connect_timeout=max(2, math.ceil(attempt.remaining())),  # libpq's least is 2 s
            application_name="migrate-bot monitor",
        )
    except psycopg.Error as err:
        raise Unreadable(f"cannot connect to the target: {err}") from None
    # A duplicate of the connection's descriptor: shutting it down ends psycopg's wait, and it cannot be
    # another socket's by then (the descriptor number of a closed connection may be reused; the dup's not).
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    attempt.interruptible(lambda: _shutdown(sock))
    try:
        with conn:
            conn.read_only = True
            budget_ms = max(1, int(attempt.remaining() * 1000) - 100)
            conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{budget_ms}ms"])
            return work(conn)
    except psycopg.errors.QueryCanceled:
        raise Unreadable(f"the query ran into its statement_timeout ({budget_ms} ms)") from None
    except psycopg.Error as err:
        raise Unreadable(f"the target answered: {err}") from None
    finally:
        attempt.interruptible(None)
        sock.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the server closed it already
        sock.shutdown(socket.SHUT_RDWR)
