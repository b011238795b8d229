"""What the leader process does, on one thread: deliver the outbox, run the scheduled jobs and the monitor's
watch, and, when it becomes the leader, take stock of what the previous one left (steps interrupted by
its death)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.delivery import Deliverer
from bot.jobs import Jobs
from bot.monitor.loop import MonitorLoop
from storage.leader import Leadership

log = logging.getLogger(__name__)


class LeaderLoop:
    def __init__(
        self,
        *,
        deliverer: Deliverer,
        jobs: Jobs,
        watch: MonitorLoop,
        leadership: Leadership,
        on_becoming_leader: Callable[[], None],
    ) -> None:
        self.deliverer = deliverer
        self.jobs = jobs
        self.watch = watch
        self.leadership = leadership
        self.on_becoming_leader = on_becoming_leader
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader", daemon=True)

    def start(self) -> LeaderLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self.deliverer.wake()
        self._thread.join(timeout=timeout)
        self.watch.shutdown()
        self.jobs.shutdown()
        self.leadership.release()

    def _run(self) -> None:
        was_leader = False
        while not self._stop.is_set():
            try:
                leader = self.leadership.acquire()
                if leader and not was_leader:
                    self.on_becoming_leader()
                if leader:
                    self.jobs.lead()
                    self.watch.lead()
                    self.deliverer.deliver_due()
                else:
                    self.jobs.follow()
                    self.watch.follow()
                was_leader = leader
            except Exception:  # the store is down, say: keep the thread alive and try again
                log.exception("leader duties failed; trying again")
            self.deliverer.wait()
