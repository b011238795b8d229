"""The work path: the bot's own bounded thread pools, apart from the threads that acknowledge Slack.

A pool never refuses work: past its size, work waits in its queue, and the caller can say so to the
person who asked. Slow work (planning a 10 MB file, a target that never answers) and quick decisions
(clicks, modals, status) have separate pools, so a click is never queued behind a slow plan.

The threads are daemons and stopping waits a bounded time: a job stuck on a hung target cannot keep
a stopping bot alive (what a job decided is committed with what it owes Slack, or not at all).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkPool:
    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._in_flight = 0  # queued or running
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        """How many jobs would run before one submitted now (0 when a thread is free)."""
        with self._idle:
            return max(0, self._in_flight - self.size + 1)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._idle:
            self._in_flight += 1
        self._queue.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            future, fn, args, kwargs = job
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as err:  # jobs report their own failures; this is the net under them
                        log.error("unhandled error in a %s job", self.name, exc_info=err)
                        future.set_exception(err)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()

    def shutdown(self, *, timeout: float) -> bool:
        """Let queued and running jobs finish for up to ``timeout`` seconds; True when all did."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            drained = self._in_flight == 0
        for _ in self._threads:
            self._queue.put(None)
        if not drained:
            log.warning("stopping with %d %s job(s) unfinished", self._in_flight, self.name)
        return drained
