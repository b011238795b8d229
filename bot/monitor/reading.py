"""Reading an environment whole: its configured sources and its database's signals, as one sample.

Readers are kept per environment: each source bounds the reads stuck on a silent server to one, which
only holds if the same source object is asked every time. Windows open on the same environment (a train of
migrations on one database) share a read: one that finished less than ``fresh_seconds`` ago is the answer,
and while one is under way the others wait for it rather than asking the same servers again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime

from bot.config import EnvironmentConfig
from bot.monitor.signals import DatabaseSignals
from bot.monitor.sources import Sample, Source, build_sources


@dataclass
class _Environment:
    sources: dict[str, Source]
    signals: DatabaseSignals
    lock: threading.Lock
    read_at: datetime | None = None  # by the bot's clock, which a demo or a test may move
    samples: dict[str, Sample] | None = None


class EnvironmentReader:
    def __init__(self, fresh_seconds: float = 0) -> None:
        self.fresh_seconds = fresh_seconds
        self._lock = threading.Lock()
        self._built: dict[str, _Environment] = {}

    def read(self, env: EnvironmentConfig, now: datetime) -> dict[str, Sample]:
        """Every source, then every signal; each read is bounded by its own deadline."""
        built = self._for(env)
        with built.lock:
            fresh = (
                built.read_at is not None and 0 <= (now - built.read_at).total_seconds() < self.fresh_seconds
            )
            if built.samples is not None and fresh:
                return dict(built.samples)
            found = {metric: source.read(now) for metric, source in built.sources.items()}
            built.samples, built.read_at = found | built.signals.read(now), now
            return dict(built.samples)

    def _for(self, env: EnvironmentConfig) -> _Environment:
        with self._lock:
            if env.name not in self._built:
                self._built[env.name] = _Environment(
                    build_sources(env, os.environ),
                    DatabaseSignals(env.dsn(os.environ), dsn_env=env.dsn_env),
                    threading.Lock(),
                )
            return self._built[env.name]
