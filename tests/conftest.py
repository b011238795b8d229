"""Shared fixtures: a real PostgreSQL (embedded, or TARGET_DATABASE_URL) with a fresh database per test, and a
target that hangs."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.embedded import create_database, drop_database, start_server

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A superuser DSN: TARGET_DATABASE_URL when set, else an embedded server for this test session."""
    if os.environ.get("TARGET_DATABASE_URL"):
        return os.environ["TARGET_DATABASE_URL"]
    return start_server(tmp_path_factory.mktemp("pg") / "data")


@pytest.fixture
def target_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = create_database(pg_admin_dsn, name)
    yield dsn
    drop_database(pg_admin_dsn, name)


@pytest.fixture
def hanging_target() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a target database that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()
