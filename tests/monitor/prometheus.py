"""A real Prometheus server for the monitor's tests (Debian's ``prometheus`` package), scraping the
stand-in application every second.

Installed when missing (``apt-get install --no-install-recommends prometheus``, as root; the system
service the package starts on port 9090 is stopped and disabled: each test session runs its own server on
a free port with its own storage). When it cannot be installed the tests fail saying why: the monitor is
not tested without it.

Measured with Prometheus 2.42 on a shared 2-CPU machine, scraping every second: installing takes ~10 s;
the API is ready 0.1 s after start and the first scrape comes 5 s later (service discovery's first update);
after the application's error ratio goes from 0 to 8 % a [5s] ratio passes 5 % in ~3 s and is within 0.3
points of 8 % in 4-5 s, back under 1 % ~4 s after it returns to 0; a [5s] mean latency follows in 4 s.
When the application stops reporting ``up`` is 0 within a second, while a [5s] ratio keeps answering its
old value ~4 s and a [30s] one ~29 s. Poll with ``wait_for`` rather than sleeping.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

PACKAGE = "prometheus"
SCRAPE_SECONDS = 1
INSTALL_LOCK = Path(tempfile.gettempdir()) / "migrate-bot-prometheus-install.lock"


class PrometheusUnavailable(Exception):
    """Prometheus is not installed and could not be; the message says what to do."""


def ensure_installed() -> str:
    """The ``prometheus`` binary, installed from Debian's package first when missing (one installer at a
    time across test workers)."""
    found = shutil.which(PACKAGE)
    if found:
        return found
    with _exclusive(INSTALL_LOCK):
        found = shutil.which(PACKAGE)  # another worker may have installed it meanwhile
        if found:
            return found
        how = "run: apt-get install -y --no-install-recommends prometheus"
        if os.geteuid() != 0:
            raise PrometheusUnavailable(f"prometheus is not installed, and installing it needs root; {how}")
        if not shutil.which("apt-get"):
            raise PrometheusUnavailable(f"prometheus is not installed and there is no apt-get here; {how}")
        install = [
            *("apt-get", "install", "-y", "-q", "--no-install-recommends"),
            *("-o", "DPkg::Lock::Timeout=300", PACKAGE),
        ]
        result = _apt(install)
        if result.returncode != 0:  # a fresh machine may have no package lists yet
            _apt(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"])
            result = _apt(install)
        if result.returncode != 0:
            raise PrometheusUnavailable(f"apt-get could not install prometheus:\n{result.stdout[-2000:]}")
        stop_system_service()
    found = shutil.which(PACKAGE)
    if not found:
        raise PrometheusUnavailable("the prometheus package installed no prometheus on PATH")
    return found


def stop_system_service() -> None:
    """Stop and disable the service the package starts on port 9090 (systemd, or its init script)."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        commands = [["systemctl", "disable", "--now", PACKAGE]]
    else:
        commands = [["/etc/init.d/prometheus", "stop"], ["update-rc.d", PACKAGE, "disable"]]
    for argv in commands:
        if shutil.which(argv[0]) or Path(argv[0]).exists():
            subprocess.run(argv, capture_output=True, timeout=60, check=False)


def _apt(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False
    )


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prometheus:
    """A running server: ``url`` for sources' config, ``value``/``wait_for`` for tests."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def value(self, query: str) -> float | None:
        """The query's single answer now: a float (NaN included), None when it answers nothing."""
        params = urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as response:
            data = json.load(response)["data"]
        if data["resultType"] == "scalar":
            return float(data["result"][1])
        result = data["result"]
        assert len(result) <= 1, f"{query} answers {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self, query: str, check: Callable[[float | None], bool], *, timeout: float = 20, what: str = ""
    ) -> float | None:
        """Poll ``query`` (every 0.2 s) until its answer passes ``check``; that answer. AssertionError with
        the last answer after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.value(query)
            if check(answer):
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"{what or query} still {answer} after {timeout:g} s")
            time.sleep(0.2)

    def wait_near(self, query: str, expected: float, *, tolerance: float, timeout: float = 20) -> float:
        """Poll until ``query`` answers within ``tolerance`` of ``expected``."""
        answer = self.wait_for(
            query,
            lambda v: v is not None and abs(v - expected) <= tolerance,
            timeout=timeout,
            what=f"{query} (waiting for {expected:g} ± {tolerance:g})",
        )
        assert answer is not None
        return answer

    def wait_nan(self, query: str, *, timeout: float = 20) -> None:
        self.wait_for(
            query, lambda v: v is not None and math.isnan(v), timeout=timeout, what=f"{query} (NaN)"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(binary: str, workdir: Path, targets: list[str], *, job: str = "app") -> Prometheus:
    """Start Prometheus on a free port of 127.0.0.1, scraping ``targets`` every SCRAPE_SECONDS, its
    storage in ``workdir``; ready when its API answers (the first scrape comes later: wait for ``up``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {
                    "scrape_interval": f"{SCRAPE_SECONDS}s",
                    "scrape_timeout": f"{SCRAPE_SECONDS}s",
                    "evaluation_interval": f"{SCRAPE_SECONDS}s",
                },
                "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
            }
        )
    )
    log = workdir / "prometheus.log"
    for _ in range(3):  # the free port may be taken before Prometheus binds it
        port = free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    "--storage.tsdb.retention.time=1h",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Prometheus(process, f"http://127.0.0.1:{port}", log)
        if _ready(server, timeout=30):
            return server
        server.stop()
        if "address already in use" not in log.read_text(errors="replace"):
            break
    raise PrometheusUnavailable(
        f"prometheus did not start; its log:\n{log.read_text(errors='replace')[-3000:]}"
    )


def _ready(server: Prometheus, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as answer,
        ):
            if answer.status == 200:
                return True
        time.sleep(0.1)
    return False
