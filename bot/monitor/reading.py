"""Reading an environment whole: its configured sources and its database's signals, as one sample.

Readers are kept per environment: each source bounds the reads stuck on a silent server to one, which
only holds if the same source object is asked every time.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime

from bot.config import EnvironmentConfig
from bot.monitor.signals import DatabaseSignals
from bot.monitor.sources import Sample, Source, build_sources


class EnvironmentReader:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, tuple[dict[str, Source], DatabaseSignals]] = {}

    def read(self, env: EnvironmentConfig, now: datetime) -> dict[str, Sample]:
        """Every source, then every signal; each read is bounded by its own deadline."""
        sources, signals = self._for(env)
        found = {metric: source.read(now) for metric, source in sources.items()}
        return found | signals.read(now)

    def _for(self, env: EnvironmentConfig) -> tuple[dict[str, Source], DatabaseSignals]:
        with self._lock:
            if env.name not in self._built:
                self._built[env.name] = (
                    build_sources(env, os.environ),
                    DatabaseSignals(env.dsn(os.environ), dsn_env=env.dsn_env),
                )
            return self._built[env.name]
