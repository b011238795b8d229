"""The store's sessions on SQLite: writers of one process queue on a lock, readers never wait for them, and
a reading session refuses to change anything."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import OutboxRecord


def row(n: int = 0) -> OutboxRecord:
    return OutboxRecord(stream=f"s{n}", kind="thread", not_before=datetime.now(UTC))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/state.db")
    database.upgrade()
    return database


def test_a_reader_is_not_held_up_by_a_writer_and_sees_only_what_is_committed(db: Database) -> None:
    writing, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with db.session() as session:
            session.add(row())
            session.flush()
            writing.set()
            release.wait(10)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert writing.wait(10)
    started = time.monotonic()
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRecord)) == 0  # not committed yet
    assert time.monotonic() - started < 1, "the reader waited for the writer"
    release.set()
    writer.join(10)
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRecord)) == 1


def test_writers_of_one_process_take_turns_without_errors(db: Database) -> None:
    def write(n: int) -> None:
        for _ in range(20):
            with db.session() as session:
                session.add(row())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRecord)) == 160


def test_a_reading_session_refuses_to_change_the_store(db: Database) -> None:
    with pytest.raises(RuntimeError, match="may not change"), db.reading() as session:
        session.add(row())
        session.flush()
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRecord)) == 0
