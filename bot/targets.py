"""Connecting to an environment's target database, and what to know when it cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot.redact import redact
from bot.sql.catalog import Catalog, LiveCatalog, OfflineCatalog

if TYPE_CHECKING:
    from bot.config import EnvironmentConfig

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5


@contextmanager
def open_catalog(env: EnvironmentConfig) -> Iterator[Catalog]:
    """A live catalog when the target answers, else an offline one with the configured version.

    Planning must work while the target is down; rules then say what they could not check.
    """
    dsn = env.dsn()
    if not dsn:
        yield OfflineCatalog(env.server_version_num)
        return
    import psycopg  # only with a target to reach: it is slow to load, and planning offline needs none

    try:
        conn = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as err:
        log.warning("target of %s unreachable, planning offline: %s", env.name, redact(str(err)))
        yield OfflineCatalog(env.server_version_num)
        return
    with conn:
        conn.execute("SET default_transaction_read_only = on")
        yield LiveCatalog(conn)
