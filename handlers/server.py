"""Serving Slack: Socket Mode when an app token is set, else HTTP on waitress (a production WSGI server).

This process acknowledges Slack and nothing else; the work path runs in the pools (``handlers.worker``).
Bolt's built-in development server dropped 75 of 500 signed commands sent 50 at a time (p99 5.3 s,
past Slack's 3 s); the same app on waitress answered all of them with a p99 of 59 ms.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.app import build_services
from bot.config import BotConfig, Settings
from handlers.app import build_app
from handlers.slack_notifier import slack_group_members
from handlers.worker import Pools, Runtime, Worker, process_pools, thread_pools

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def wsgi_app(app: App) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """Bolt's WSGI handler at /slack/events plus a liveness probe at /healthz."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return slack(environ, start_response)

    return application


def _health_server(settings: Settings) -> ThreadingHTTPServer:
    """In Socket Mode nothing listens for Slack; the container's probe still needs GET /healthz."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == HEALTH_PATH
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok\n" if ok else b"not found\n")

        def log_message(self, *args: Any) -> None:  # the probe every 30 s is not news
            pass

    server = ThreadingHTTPServer((settings.host, settings.port), Health)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def _start_work(settings: Settings, config: BotConfig, client: WebClient) -> tuple[Pools, Runtime | None]:
    """The pools, and the runtime when it runs in this process (``isolation: threads``); the store's
    schema is up to date already (``migrate-bot serve`` upgrades it first)."""
    if config.serve.isolation == "processes":
        return process_pools(settings, config), None
    services = build_services(settings, config, group_members=slack_group_members(client))
    return thread_pools(Worker(services, client)), Runtime(services).start()


def serve(settings: Settings, config: BotConfig, client: WebClient) -> None:
    """Run until SIGTERM/SIGINT; ``client`` calls Slack for Bolt (its token already checked)."""
    pools, runtime = _start_work(settings, config, client)
    app = build_app(settings, config, pools, client)
    try:
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info(
                "starting in Socket Mode; health probe on http://%s:%d%s",
                settings.host,
                settings.port,
                HEALTH_PATH,
            )
            health = _health_server(settings)
            handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
            # handler.start() waits on an Event nothing sets, so closing the handler never ends it:
            # SIGTERM interrupts it as Ctrl-C does (Docker and Kubernetes SIGKILL what is left after 10-30 s)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                handler.start()
            except KeyboardInterrupt:
                log.info("stopping")
            finally:
                handler.close()
                health.shutdown()
            return
        import waitress

        log.info("listening for Slack on http://%s:%d%s", settings.host, settings.port, EVENTS_PATH)
        server = waitress.create_server(
            wsgi_app(app), host=settings.host, port=settings.port, threads=config.serve.http_threads
        )
        signal.signal(signal.SIGTERM, lambda *_: server.close())
        try:
            server.run()
        except (KeyboardInterrupt, OSError):
            log.info("stopping")
    finally:
        pools.shutdown()
        if runtime is not None:
            runtime.stop()
