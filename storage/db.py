"""Engine, schema upgrades (Alembic) and one session per unit of work."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.models import STAMPED_ON_INSERT, STAMPED_ON_UPDATE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for the bot's store; SQLite gets its directory, foreign keys and WAL.

    SQLite transactions start with BEGIN IMMEDIATE: two clicks deciding the same plan then queue for the
    write lock instead of both reading a stale plan (PostgreSQL sessions lock the plan row instead).
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
        def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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
        self._listeners: dict[str, list[Callable[[], None]]] = defaultdict(list)
        event.listen(self._sessions, "after_commit", self._after_commit)
        event.listen(self._sessions, "before_flush", self._stamp)

    def upgrade(self) -> None:
        upgrade(self.engine)

    def on_commit(self, topic: str, callback: Callable[[], None]) -> None:
        self._listeners[topic].append(callback)

    @staticmethod
    def notify(session: Session, topic: str) -> None:
        session.info.setdefault("notify", set()).add(topic)

    def _stamp(self, session: Session, _context: object, _instances: object) -> None:
        """Date new rows (and touch updated ones) with this store's clock."""
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
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
