"""Fixtures of the monitor's tests: the stand-in application, a real Prometheus scraping it, and a target
that goes silent once connected.

- ``app``: the application (tests/monitor/exporter.py) reset to a healthy 100 requests/s, 0 % errors,
  100 ms: ``app.set_errors(0.08)``, ``app.set_latency(0.3)``, ``app.set_health(503, {...})``,
  ``app.set_traffic(0)``, ``app.stop_reporting()``; ``app.health_url``;
- ``prometheus``: the server (one per test session and worker), ``prometheus.url`` for a source's config,
  ``prometheus.wait_near(ERROR_RATIO, 0.08, tolerance=0.003)`` to wait until a change shows (a [5s] window
  follows in 4-5 s: wait, do not sleep). Tests share the session's application: after ``app``'s reset,
  Prometheus still answers the previous test's values for a window's length;
- ``silent_target``: a DSN of the test database through a relay that never answers a statement containing
  SILENT (connected, then silent: what psycopg waits on forever).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.monitor.exporter import UP, Exporter
from tests.monitor.prometheus import Prometheus, PrometheusUnavailable, ensure_installed, start


@pytest.fixture(scope="session")
def app_exporter() -> Iterator[Exporter]:
    """The session's application, as the session's Prometheus scrapes it; tests take ``app``."""
    exporter = Exporter().start()
    yield exporter
    exporter.close()


@pytest.fixture
def app(app_exporter: Exporter) -> Iterator[Exporter]:
    app_exporter.reset()
    yield app_exporter
    app_exporter.reset()


@pytest.fixture(scope="session")
def prometheus(app_exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping the application every second, ready once it has scraped it."""
    try:
        binary = ensure_installed()
        server = start(binary, tmp_path_factory.mktemp("prometheus"), [app_exporter.address])
    except PrometheusUnavailable as err:
        pytest.fail(f"the monitor's tests need a real Prometheus: {err}", pytrace=False)
    try:
        server.wait_for(UP, lambda up: up == 1, timeout=30, what="the first scrape")
        yield server
    finally:
        server.stop()


SILENT = "/* the target goes silent */"  # a statement with this in it is never answered


class Relay:
    """A TCP relay to a PostgreSQL server that stops passing bytes on a connection once its client sends
    SILENT, keeping the connection open: a target that accepted the session and then never answers."""

    def __init__(self, upstream: tuple[int, str | tuple[str, int]]) -> None:
        self._upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = [self._server]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def port(self) -> int:
        return self._server.getsockname()[1]

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client = self._server.accept()[0]
            except TimeoutError:
                continue
            family, address = self._upstream
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(address)
            self._sockets += [client, server]
            thread = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peers), [], [], 0.1)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if sock is client and SILENT.encode() in data:
                    self._stop.wait()  # hold the connection, answer nothing, until the relay closes
                    return
                with contextlib.suppress(OSError):
                    peers[sock].sendall(data)


@pytest.fixture
def silent_target(target_dsn: str) -> Iterator[str]:
    """The test database's DSN through a Relay: a statement containing SILENT is never answered."""
    params = {k: str(v) for k, v in conninfo_to_dict(target_dsn).items() if v is not None}
    host, port = params.get("host", "/tmp"), int(params.get("port", 5432))
    upstream = (
        (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        if host.startswith("/")
        else (socket.AF_INET, (host, port))
    )
    relay = Relay(upstream)
    yield make_conninfo(**{**params, "host": "127.0.0.1", "port": str(relay.port)})
    relay.close()
