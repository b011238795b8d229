"""The work path: the bot's own bounded pools, apart from the threads that acknowledge Slack.

A pool never refuses work: past its size, work waits in its queue, and the caller can say so to the
person who asked. A job is a module-level function called as ``job(context, **kwargs)``, where the
context (services, a Slack client) is the pool's own, built where the job runs:

- ``ProcessPool``: processes of their own, each building its context once at start. Nothing a job
  does, not even seconds of C code holding Python's interpreter lock (pglast parsing a 10 MB file),
  can slow the process that acknowledges Slack. Jobs and their arguments must pickle.
- ``ThreadPool``: daemon threads in this process, sharing one context (tests, the CLI, small setups).

Stopping waits a bounded time: a job stuck on a hung target cannot keep a stopping bot alive (what a
job decided is committed with what it owes Slack, or not at all).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

Job = Callable[..., Any]


class WorkPool(Protocol):
    name: str
    size: int

    @property
    def waiting(self) -> int:
        """How many jobs would run before one submitted now (0 when a worker is free)."""
        ...

    def submit(self, job: Job, /, **kwargs: Any) -> Future[Any]: ...

    def shutdown(self, *, timeout: float) -> bool:
        """Let queued and running jobs finish for up to ``timeout`` seconds; True when all did."""
        ...


class _Load:
    """Jobs queued or running, counted where they are submitted."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle = threading.Condition()
        self.in_flight = 0

    @property
    def waiting(self) -> int:
        with self.idle:
            return max(0, self.in_flight - self.size + 1)

    def started(self) -> None:
        with self.idle:
            self.in_flight += 1

    def finished(self, *_: object) -> None:
        with self.idle:
            self.in_flight -= 1
            self.idle.notify_all()

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.idle:
            while self.in_flight and (left := deadline - time.monotonic()) > 0:
                self.idle.wait(left)
            return self.in_flight == 0


def _report(name: str, future: Future[Any]) -> None:
    """The net under the jobs, which report their own failures to the people who asked."""
    error = None if future.cancelled() else future.exception()
    if error is not None:
        log.error("unhandled error in a %s job", name, exc_info=error)


class ThreadPool:
    def __init__(self, name: str, size: int, context: Any) -> None:
        self.name = name
        self.size = size
        self._context = context
        self._load = _Load(size)
        self._queue: queue.SimpleQueue[tuple[Future[Any], Job, dict[str, Any]] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        return self._load.waiting

    def submit(self, job: Job, /, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._load.started()
        future.add_done_callback(lambda done: _report(self.name, done))
        self._queue.put((future, job, kwargs))
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, job, kwargs = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job(self._context, **kwargs))
                    except BaseException as err:
                        future.set_exception(err)
            finally:
                self._load.finished()

    def shutdown(self, *, timeout: float) -> bool:
        drained = self._load.drain(timeout)
        for _ in self._threads:
            self._queue.put(None)
        if not drained:
            log.warning("stopping with %d %s job(s) unfinished", self._load.in_flight, self.name)
        return drained


@dataclass(frozen=True)
class Priority:
    """How a pool's processes yield the CPU to the process acknowledging Slack.

    Each process leaves the bot's session: Linux schedules sessions ("autogroups") fairly against each
    other first, so CPU burnt by a worker in the bot's own session would be charged to the process that
    acknowledges, and its wake-ups would queue behind every other session's work (measured: p99 of
    `/migrate help` 35 ms with planning paused, 100-250 ms with it parsing a 10 MB file). In its own
    session, ``niceness`` lowers its share (and its autogroup's); ``idle`` (SCHED_IDLE) lets it run
    only on CPU nobody else wants.
    """

    niceness: int = 0
    idle: bool = False

    def apply(self) -> None:
        os.setsid()
        if self.niceness:
            os.nice(self.niceness)
            with contextlib.suppress(OSError):  # Linux with autogroups only
                Path("/proc/self/autogroup").write_text(str(self.niceness))
        if self.idle and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


# How often a pool process checks that the process that started it is still there (a system call): the
# leader among them delivers Slack's messages, and an orphan must not send a retry (seen at 1 s on a busy
# machine: a message sent again by the worker of a bot that had been killed).
ORPHAN_CHECK_SECONDS = 0.1
# The context of the process a ProcessPool started: built once by its initializer.
_context: Any = None
# The process that started this one, when a ProcessPool did.
_parent: int | None = None


def parent_alive() -> bool:
    """False in a pool process whose bot is gone (before the orphan watch ends it); True elsewhere."""
    return _parent is None or os.getppid() == _parent


def _start_process(initializer: Callable[..., Any], args: tuple[Any, ...], priority: Priority) -> None:
    global _context, _parent
    priority.apply()  # first: threads started from here on inherit it
    _parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(_parent,), name="orphan-watch", daemon=True).start()
    _context = initializer(*args)


def _exit_with_parent(parent: int) -> None:
    """A pool process whose parent was killed (SIGKILL leaves no time to stop it) goes too: it would
    hold the leader's lock, and deliver with a configuration nobody runs any more."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)


def _call(job: Job, kwargs: dict[str, Any]) -> Any:
    return job(_context, **kwargs)


class ProcessPool:
    """``size`` processes, started fresh (``spawn``: no locks or threads copied from this process), at
    ``priority``. A process that dies (killed, out of memory) breaks the executor; the next submission
    starts a new one, and the jobs that were lost fail with BrokenProcessPool.
    """

    def __init__(
        self,
        name: str,
        size: int,
        initializer: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        priority: Priority = Priority(),
    ) -> None:
        self.name = name
        self.size = size
        self._start = (initializer, args, priority)
        self._load = _Load(size)
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=self._start,
        )

    @property
    def waiting(self) -> int:
        return self._load.waiting

    def warm_up(self, timeout: float) -> None:
        """Start every process now, so the first request does not wait for imports."""
        for future in [self._executor.submit(time.sleep, 0.2) for _ in range(self.size)]:
            future.result(timeout=timeout)

    def submit(self, job: Job, /, **kwargs: Any) -> Future[Any]:
        with self._lock:
            try:
                future = self._executor.submit(_call, job, kwargs)
            except BrokenProcessPool:
                log.error("a %s process died; starting the pool again", self.name)
                self._executor = self._new_executor()
                future = self._executor.submit(_call, job, kwargs)
        self._load.started()
        future.add_done_callback(self._load.finished)
        future.add_done_callback(lambda done: _report(self.name, done))
        return future

    def shutdown(self, *, timeout: float) -> bool:
        drained = self._load.drain(timeout)
        if not drained:
            log.warning("stopping with %d %s job(s) unfinished", self._load.in_flight, self.name)
            # the executor would wait for them at exit; a job stuck on a hung target must not hold us
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)
        return drained
