"""Windows open on one environment share its reads: one made less than half an interval ago (by the bot's
clock, which tests and the demo move) answers them all; the sources are asked again after it."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import parse_config
from bot.monitor.reading import EnvironmentReader
from tests.execution.test_runner import ROLES

# Appends a line to the file each time it is read, and prints how many reads there were.
COUNT = "import sys; f = open(sys.argv[1], 'a+'); f.write('.'); f.seek(0); print(len(f.read()))"


def test_a_read_is_shared_while_fresh_and_made_again_after(tmp_path: Path) -> None:
    reads = tmp_path / "reads"
    source = {"command": {"argv": [sys.executable, "-c", COUNT, str(reads)]}}
    env = {"migrations_dir": str(tmp_path), "monitor": {"sources": {"error_rate": source}}}
    config = parse_config({"environments": {"production": env}, "roles": ROLES}, tmp_path)
    reader = EnvironmentReader(fresh_seconds=15)
    production = config.environments["production"]
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    first = reader.read(production, now)
    assert first["error_rate"].value == 1
    assert reader.read(production, now + timedelta(seconds=14))["error_rate"].value == 1  # shared
    assert reader.read(production, now + timedelta(seconds=15))["error_rate"].value == 2  # read again
    assert reader.read(production, now)["error_rate"].value == 3  # a clock moved back reads afresh
    assert reads.read_text() == "..."
    assert "connections" in first  # the database's signals come with every read (unknown here: no DSN)
