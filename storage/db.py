"""Engine, schema upgrades (Alembic) and one session per unit of work."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.models import STAMPED_ON_INSERT, STAMPED_ON_UPDATE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, *, reads_only: bool = False) -> Engine:
    """An engine for the bot's store; SQLite gets its directory, foreign keys and WAL.

    SQLite transactions start with BEGIN IMMEDIATE: two clicks deciding the same plan then queue for the
    write lock instead of both reading a stale plan (PostgreSQL sessions lock the plan row instead). An
    engine for ``reads_only`` begins plainly: WAL lets its readers run beside the one writer.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()
            dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Bring the bot's own schema to the newest Alembic revision."""
    from alembic import command  # imported here: planning on the CLI never needs Alembic
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The bot's store: ``with db.session() as s:`` commits on success, rolls back on error.

    ``notify(session, topic)`` asks for the callbacks ``on_commit(topic, …)`` registered to run once
    the session's transaction has committed (a rolled-back session is discarded with its requests): the
    outbox wakes its deliverer so.
    """

    def __init__(self, url: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.url = url
        self.clock = clock
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        sqlite = self.engine.dialect.name == "sqlite"
        # SQLite's readers on an engine of their own (but in memory, where it would be another database)
        own = sqlite and self.engine.url.database not in (None, "", ":memory:")
        self._readings = sessionmaker(
            make_engine(url, reads_only=True) if own else self.engine, expire_on_commit=False
        )
        self._listeners: dict[str, list[Callable[[], None]]] = defaultdict(list)
        event.listen(self._sessions, "after_commit", self._after_commit)
        event.listen(self._sessions, "before_flush", self._stamp)
        event.listen(self._readings, "before_flush", self._stamp)
        # SQLite has one writer, and a transaction waiting for it polls, sleeping up to 100 ms a time: this
        # process's writers queue here instead and start the moment the last one commits
        self._writer: AbstractContextManager[object] = threading.RLock() if sqlite else nullcontext()

    def upgrade(self) -> None:
        upgrade(self.engine)

    def on_commit(self, topic: str, callback: Callable[[], None]) -> None:
        self._listeners[topic].append(callback)

    @staticmethod
    def notify(session: Session, topic: str) -> None:
        session.info.setdefault("notify", set()).add(topic)

    def _stamp(self, session: Session, _context: object, _instances: object) -> None:
        """Date new rows (and touch updated ones) with this store's clock."""
        if session.info.get("reading"):
            raise RuntimeError("a reading session may not change the store")
        now = self.clock()
        for obj in session.new:
            for name in STAMPED_ON_INSERT:
                if hasattr(obj, name) and getattr(obj, name) is None:
                    setattr(obj, name, now)
        for obj in session.dirty:
            for name in STAMPED_ON_UPDATE:
                if hasattr(obj, name) and session.is_modified(obj):
                    setattr(obj, name, now)

    def _after_commit(self, session: Session) -> None:
        for topic in session.info.pop("notify", ()):
            for callback in self._listeners.get(topic, ()):
                callback()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads, never waiting for a writer: what polls ask many times a second (what
        is due). It is rolled back at the end; a change made in it is an error, not lost quietly."""
        session = self._readings()
        session.info["reading"] = True
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._writer:
            session = self._sessions()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
