"""The leader's watch: every open window sampled when its sample is due, every incident paged when a page
is due, on a pool of threads (a sample waits on its sources), each window or incident once at a time.

Only the leader runs it: a follower that becomes leader starts it, and finds the windows and incidents
where the last leader left them, in the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from bot.monitor.incidents import Incidents
from bot.monitor.window import Monitors

log = logging.getLogger(__name__)

# How often the store is asked what is due: the most a sample or a page waits past its time for it.
POLL_SECONDS = 0.2
# Samples and pages worked on at once (a sample may wait seconds on a slow source).
WORKERS = 32


class MonitorLoop:
    def __init__(self, monitors: Monitors, incidents: Incidents, *, workers: int = WORKERS) -> None:
        self.monitors = monitors
        self.incidents = incidents
        self.workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def lead(self) -> None:
        """Run (again) on this process: it is the leader."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()

    def follow(self) -> None:
        """Another process leads: stop after what is in hand."""
        self._stop.set()

    def shutdown(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="monitor") as pool:
            while not self._stop.is_set():
                try:
                    self.submit_due(pool.submit)
                except Exception:  # the store is down, say: try again at the next poll
                    log.exception("monitor: cannot read what is due")
                self._stop.wait(POLL_SECONDS)

    def submit_due(self, submit: Callable[..., Future[object]]) -> int:
        """Hand every due sample and page to ``submit`` unless it is in hand already; how many."""
        work: list[tuple[tuple[str, int], Callable[[int], object]]] = [
            (("window", i), self.monitors.tick) for i in self.monitors.due()
        ] + [(("incident", i), self.incidents.escalate) for i in self.incidents.due()]
        started = 0
        for key, do in work:
            with self._lock:
                if key in self._busy:
                    continue
                self._busy.add(key)
            submit(self._do, key, do)
            started += 1
        return started

    def _do(self, key: tuple[str, int], do: Callable[[int], object]) -> None:
        try:
            do(key[1])
        except Exception:  # one window's failure is logged; the others go on
            log.exception("monitor: %s #%s failed", *key)
        finally:
            with self._lock:
                self._busy.discard(key)
