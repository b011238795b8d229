"""The health probe a container runs, also in Socket Mode, where nothing else listens."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from bot.config import Settings
from handlers.server import _health_server


def test_socket_mode_still_answers_the_health_probe() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _health_server(Settings(host="127.0.0.1", port=port))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/slack/events", timeout=5)
        assert refused.value.code == 404
    finally:
        server.shutdown()
