"""The tests' fake Slack Web API in a process of its own, so its work does not share a GIL with a server.

Run by ``bench/ack_bench.py``: prints one JSON line (``api_url``, ``base_url``, ``stats_url``) and
serves until SIGTERM. ``GET stats_url`` counts the calls and responses received so far, which tells
the benchmark when the bot has finished the work its requests started. It reads only FakeSlack's
public attributes, on a port of its own, so changes inside the fake do not break the benchmark.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.slack

from tests.slack.fake_api import FakeSlack

# the members of the user groups in the tests' roles (tests/slack/conftest.py ROLES)
GROUP_MEMBERS = {"S0QA": ["U0QA1", "U0QA2"], "S0SEC": ["U0SEC"]}


def stats_server(fake: FakeSlack) -> HTTPServer:
    class Stats(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            stats = {
                "calls": len(fake.calls),
                "responses": len(fake.responses),
                "invalid_payloads": len(fake.invalid_payloads),
            }
            data = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return HTTPServer(("127.0.0.1", 0), Stats)


def main() -> None:
    # the default listen queue of 5 would refuse bursts of bot calls: a bottleneck Slack does not have
    ThreadingHTTPServer.request_queue_size = 128
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with FakeSlack() as fake:
        fake.group_members = GROUP_MEMBERS
        stats = stats_server(fake)
        threading.Thread(target=stats.serve_forever, daemon=True).start()
        host, port = stats.server_address[:2]
        urls = {"api_url": fake.api_url, "base_url": fake.base_url, "stats_url": f"http://{host}:{port}/"}
        print(json.dumps(urls), flush=True)
        stopped.wait()
        stats.shutdown()


if __name__ == "__main__":
    main()
