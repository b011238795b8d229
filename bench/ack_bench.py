"""Benchmark: how fast `migrate-bot serve` acks Slack, against a bare Bolt app measured in the same run.

Run: ``.venv/bin/python bench/ack_bench.py [--concurrency 5 50] [--requests 200 500] [--cell-seconds 8]``
(``--help`` lists the rest).

Slack gives up on a request not answered within 3 s and shows the user an error, so the ack is the
latency that matters. Target, per cell: the bot's p99 within 1.2x of the bare app's, and every request
answered 200 within 3 s. The bare app (bench/bare_bolt.py: Bolt defaults, listeners that only ack, on
waitress with the bot's thread count) is what Bolt and waitress cost with none of the bot's work; at low
concurrency its ~10 ms is mostly Bolt's default ack polling, which a bot may legitimately beat.

The bot runs exactly as users run it (``python -m bot.cli serve``), the bare app and the fake Slack
Web API each in a process of their own, and the load comes from a pool of processes, so no two share
a GIL. Every request is a real HTTP POST in Slack's shape with a fresh v0 signature on a new
connection; its latency runs from just before connecting to the last byte of the answer, and a
timeout counts as 3 s. Kinds: ``/migrate help``, ``/migrate plan <file> production`` and a click on
Approve by a user without a role (fully handled, then refused). Two phases: idle, and busy with slow
``/migrate plan`` jobs in flight (a ~10 MB migration for an environment whose target accepts TCP and
never answers, so each job first waits out the bot's connect timeout, then analyses the file); the
bare app gets the same slow requests. Each cell alternates rounds of the bot and of the bare app, the
bot and its worker processes paused (SIGSTOP) while the bare app is measured: the
bot's own background work counts against the bot alone, and a change in the machine's other load
falls on both. The fake Slack runs at a lower priority: Slack's servers are not on the bot's host.
Between idle cells the bot is let
finish the work its requests started (or restarted if it cannot), so one cell's backlog does not land
on the next.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import multiprocessing
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.slack is not an installed package

from tests.slack.signing import block_actions_body, post, signed_headers, slash_command_body  # noqa: E402

DEADLINE = 3.0  # Slack's: a later answer is no answer
TARGET_RATIO = 1.2
KINDS = ("help", "approve", "plan")
APPROVE_ACTION = "plan-approve"
PLAN_FILE = "054_add_message_bookmarks.sql"  # the measured /migrate plan
CLICK_FILE = "066_index_without_concurrently.sql"  # the plan whose Approve button is clicked
SLOW_FILE = "9000_slow_add_columns.sql"
SLOW_ENV = "slow"
SLOW_DSN_ENV = "BENCH_SLOW_TARGET_URL"
CLICKER = "U0NOROLE"  # holds no role: every click is refused after the ack
EVENTS_PATH = "/slack/events"
DEFAULT_THREADS = 8
COMMANDS = {
    "help": "help",
    "plan": f"plan {PLAN_FILE} production",
    "click-plan": f"plan {CLICK_FILE} production",
    "slow": f"plan {SLOW_FILE} {SLOW_ENV}",
}


# --- load generation (runs in the pool's processes) ------------------------------------------------
def request_body(kind: str, spec: dict[str, str]) -> str:
    response_url = f"{spec['fake_base']}/response/{kind}"
    if kind == "approve":
        return block_actions_body(
            user_id=CLICKER,
            action_id=APPROVE_ACTION,
            value=spec["plan_id"],
            channel_id=spec["channel"],
            message_ts=spec["message_ts"],
            response_url=response_url,
        )
    return slash_command_body(
        COMMANDS[kind], user_id=spec["author"], channel_id=spec["channel"], response_url=response_url
    )


def http_request(url: str, body: str, secret: str) -> bytes:
    """The bytes of one signed POST, built before its clock starts; the server closes after answering."""
    parts = urlsplit(url)
    headers = {
        **signed_headers(body, secret),
        "Host": parts.netloc,
        "Content-Length": str(len(body.encode())),
        "Connection": "close",
    }
    head = f"POST {parts.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n" + body).encode()


@dataclass
class _InFlight:
    sock: socket.socket
    pending: bytes  # what is still to send
    started: float
    received: bytearray = field(default_factory=bytearray)

    def answered(self) -> bool:
        """The whole answer is in: its Content-Length is reached (else the server's close says so)."""
        head, sep, body = bytes(self.received).partition(b"\r\n\r\n")
        if not sep:
            return False
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        return match is not None and len(body) >= int(match.group(1))

    def status(self) -> str:
        first = bytes(self.received).split(b"\r\n", 1)[0].split()
        return first[1].decode() if len(first) > 1 else "no answer"


def load_share(
    url: str, kind: str, spec: dict[str, str], count: int, concurrency: int, stop_at: float
) -> tuple[list[tuple[float, str]], float]:
    """``count`` requests, ``concurrency`` at a time, each on a new connection; (samples, CPU seconds).

    One event loop over non-blocking sockets: far cheaper per request than threads and http.client,
    so the sender stays out of the servers' way on a small machine. A sample is (seconds, status) from
    just before connecting to the last byte of the answer; a late 200 is not a 200.
    """
    cpu = time.process_time()
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    queue = [http_request(url, request_body(kind, spec), spec["secret"]) for _ in range(count)]
    queue.reverse()
    samples: list[tuple[float, str]] = []
    selector = selectors.DefaultSelector()

    def start_next() -> None:
        if queue and time.time() < stop_at:
            sock = socket.socket()
            sock.setblocking(False)
            flight = _InFlight(sock, queue.pop(), time.perf_counter())
            sock.connect_ex(address)
            selector.register(sock, selectors.EVENT_WRITE, flight)

    def finish(flight: _InFlight, status: str) -> None:
        seconds = time.perf_counter() - flight.started
        selector.unregister(flight.sock)
        flight.sock.close()
        samples.append((seconds, "200 after 3 s" if status == "200" and seconds > DEADLINE else status))
        start_next()

    def step(flight: _InFlight, writable: bool) -> None:
        if writable:
            error = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                finish(flight, errno.errorcode.get(error, str(error)))
                return
            flight.pending = flight.pending[flight.sock.send(flight.pending) :]
            if not flight.pending:
                selector.modify(flight.sock, selectors.EVENT_READ, flight)
            return
        chunk = flight.sock.recv(65536)
        flight.received += chunk
        if not chunk or flight.answered():
            finish(flight, flight.status())

    for _ in range(concurrency):
        start_next()
    while selector.get_map():
        flights: list[_InFlight] = [key.data for key in selector.get_map().values()]
        oldest = min(f.started for f in flights)
        for key, mask in selector.select(timeout=max(0.0, oldest + DEADLINE - time.perf_counter())):
            try:
                step(key.data, bool(mask & selectors.EVENT_WRITE))
            except OSError as err:  # e.g. reset by the server
                if key.data.sock.fileno() != -1:
                    finish(key.data, type(err).__name__)
        now = time.perf_counter()
        for flight in flights:
            if flight.sock.fileno() != -1 and now - flight.started >= DEADLINE:
                finish(flight, "timeout")
    selector.close()
    return samples, time.process_time() - cpu


def _ignore_sigint() -> None:
    # Ctrl-C is the orchestrator's to handle; it shuts the pool down
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- measuring --------------------------------------------------------------------------------------
@dataclass
class Cell:
    """One server's answers in one cell: (seconds, status) each, a timeout counted at its 3 s."""

    samples: list[tuple[float, str]]
    planned: int
    seconds: float
    client_cpu: float  # CPU seconds the load generator spent on this cell

    @classmethod
    def merge(cls, parts: list[Cell]) -> Cell:
        return cls(
            [sample for part in parts for sample in part.samples],
            sum(part.planned for part in parts),
            sum(part.seconds for part in parts),
            sum(part.client_cpu for part in parts),
        )

    @property
    def n(self) -> int:
        return len(self.samples)

    def percentile(self, q: float) -> float:
        ordered = sorted(s for s, _ in self.samples)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")

    @property
    def max(self) -> float:
        return max((s for s, _ in self.samples), default=float("nan"))

    @property
    def codes(self) -> Counter[str]:
        return Counter(status for _, status in self.samples)

    @property
    def failures(self) -> int:
        return sum(count for status, count in self.codes.items() if status != "200")


class LoadGenerator:
    """A pool of processes that send the requests, so the sender is never the bottleneck."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_ignore_sigint)

    def run(
        self, url: str, kind: str, spec: dict[str, str], concurrency: int, total: int, cell_seconds: float
    ) -> Cell:
        stop_at = time.time() + cell_seconds
        procs = min(self.processes, concurrency)
        futures = [
            self.pool.submit(
                load_share,
                url,
                kind,
                spec,
                total // procs + (i < total % procs),
                concurrency // procs + (i < concurrency % procs),
                stop_at,
            )
            for i in range(procs)
        ]
        started = time.perf_counter()
        shares = [future.result() for future in futures]
        samples = [sample for share, _ in shares for sample in share]
        return Cell(samples, total, time.perf_counter() - started, sum(cpu for _, cpu in shares))

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


# --- the processes under test -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server in its own process and session (Ctrl-C reaches only the benchmark, which stops it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{EVENTS_PATH}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env={**self.env, "HOST": "127.0.0.1", "PORT": str(self.port)},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            health = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1) as resp:
                if resp.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def family(self) -> dict[int, int]:
        """CPU ticks of the server's process and every process it started (its workers leave its
        session, so they are found by parentage), from Linux /proc; empty where unavailable."""
        if self.proc is None:
            return {}
        stats: dict[int, tuple[int, int]] = {}  # pid -> (parent, ticks)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                head, _, rest = stat.read_text().rpartition(")")
            except OSError:
                continue
            fields = rest.split()
            stats[int(head.split(" ", 1)[0])] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        family, grew = {self.proc.pid}, True
        while grew:
            more = {pid for pid, (parent, _) in stats.items() if parent in family} - family
            family |= more
            grew = bool(more)
        return {pid: stats[pid][1] for pid in family if pid in stats}

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time used by the server's own process (the one that acknowledges) and by it with its
        worker processes."""
        ticks = self.family()
        hz = os.sysconf("SC_CLK_TCK")
        own = ticks.get(self.proc.pid, 0) if self.proc is not None else 0
        return own / hz, sum(ticks.values()) / hz

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The server and its worker processes stopped: none of its work competes with the other's."""
        family = list(self.family()) if self.proc is not None and self.proc.poll() is None else []
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: the bot's pending lazy listeners would otherwise hold its exit."""
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.port = free_port()
        self.start()
        self.wait_healthy()


class Blackhole:
    """A target 'database' that accepts TCP connections and never answers: the bot's connect hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"postgresql://bench@127.0.0.1:{self.listener.getsockname()[1]}/bench"

    @property
    def accepted(self) -> int:
        return len(self.held)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # close() ends it
            while True:
                self.held.append(self.listener.accept()[0])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for conn in self.held:
            conn.close()


FAKE_SLACK_NICENESS = 10


def _lower_priority() -> None:
    """Nice, and (Linux autogroups: the fake runs in a session of its own) nice its session too."""
    os.nice(FAKE_SLACK_NICENESS)
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(FAKE_SLACK_NICENESS))


def start_fake(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    log = (tmp / "fake_slack.log").open("wb")
    stack.callback(log.close)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_slack.py")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
        # Slack's servers are not on the bot's host: the stand-in yields the CPU to what is measured
        preexec_fn=_lower_priority,
    )
    stack.callback(_terminate, proc)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=30):
            raise RuntimeError("the fake Slack Web API did not start in 30 s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the fake Slack Web API exited: {(tmp / 'fake_slack.log').read_text()}")
    return dict(json.loads(line))


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fake_stats(stats_url: str) -> dict[str, int]:
    with urllib.request.urlopen(stats_url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


def wait_quiet(stats_url: str, cap: float, quiet_for: float = 1.0) -> bool:
    """True once the fake has received nothing for ``quiet_for`` s: the bot has finished its work."""
    deadline = time.monotonic() + cap
    last, since = fake_stats(stats_url), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = fake_stats(stats_url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return True
    return False


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        return conn.execute(sql, args).fetchall()


def announced_plan(db: Path, file_name: str, timeout: float = 30) -> tuple[int, str]:
    """The newest plan of ``file_name`` once its message is posted (its Approve button exists then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            rows = query(
                db,
                "SELECT id, message_ts FROM plans WHERE file_name = ? AND message_ts IS NOT NULL "
                "ORDER BY id DESC LIMIT 1",
                file_name,
            )
            if rows:
                return int(rows[0][0]), str(rows[0][1])
        time.sleep(0.2)
    raise RuntimeError(f"no announced plan of {file_name} after {timeout:.0f} s")


@dataclass
class SlowJobs:
    """Slow ``/migrate plan`` requests to both servers, topped up so ``wanted`` stay in flight on the bot."""

    servers: list[Server]
    spec: dict[str, str]
    db: Path
    wanted: int
    launched: int = 0
    threads: list[threading.Thread] = field(default_factory=list)

    def finished(self) -> int:
        with contextlib.suppress(sqlite3.Error):
            return int(query(self.db, "SELECT count(*) FROM plans WHERE file_name = ?", SLOW_FILE)[0][0])
        return 0

    def in_flight(self) -> int:
        return self.launched - self.finished()

    def top_up(self) -> None:
        missing = self.wanted - self.in_flight()
        for _ in range(max(0, missing)):
            for server in self.servers:
                body = request_body("slow", self.spec)
                args = (server.url, body, signed_headers(body, self.spec["secret"]))
                thread = threading.Thread(target=_post_quietly, args=args, daemon=True)
                thread.start()
                self.threads.append(thread)
            self.launched += 1

    def wait_sent(self) -> None:
        for thread in self.threads:
            thread.join()
        self.threads.clear()


def _post_quietly(url: str, body: str, headers: dict[str, str]) -> None:
    with contextlib.suppress(OSError):  # a slow job's own ack may time out; the job is what counts
        post(url, body, headers)


# --- setup ------------------------------------------------------------------------------------------
def bot_threads(config: Path) -> tuple[int, str]:
    """The bot's waitress thread count, so the bare app gets the same: from the bot's config where it
    has a ``serve.http_threads`` setting, else the ``threads=N`` in handlers/server.py."""
    from bot.config import load_config

    try:
        threads = getattr(getattr(load_config(config), "serve", None), "http_threads", None)
    except Exception:  # the bot will say what is wrong with its config when it starts
        threads = None
    if isinstance(threads, int):
        return threads, "the bot's serve.http_threads"
    match = re.search(r"threads\s*=\s*(\d+)", (ROOT / "handlers" / "server.py").read_text(), re.IGNORECASE)
    if match:
        return int(match.group(1)), "read from handlers/server.py"
    return DEFAULT_THREADS, "not found in the bot's config or handlers/server.py; pass --threads"


def write_migrations(tmp: Path, slow_mb: float) -> Path:
    from tests.slack.conftest import EXAMPLE_FILES

    migrations = tmp / "migrations"
    migrations.mkdir()
    for name in EXAMPLE_FILES:
        shutil.copy(ROOT / "examples" / "migrations" / name, migrations / name)
    lines, size, i = [], 0, 0
    while size < slow_mb * 1_000_000:
        line = f"ALTER TABLE nchat.t{i} ADD COLUMN c{i} text;\n"
        lines.append(line)
        size += len(line)
        i += 1
    (migrations / SLOW_FILE).write_text("".join(lines))
    return migrations


def write_bot_config(tmp: Path, migrations: Path) -> Path:
    """The tests' config plus a production-tier environment whose target is the blackhole."""
    import yaml

    from tests.slack.conftest import write_config

    path = write_config(tmp, migrations)
    data = yaml.safe_load(path.read_text())
    data["environments"][SLOW_ENV] = {**data["environments"]["production"], "dsn_env": SLOW_DSN_ENV}
    data["environments"][SLOW_ENV]["tier"] = "production"
    path.write_text(yaml.safe_dump(data))
    return path


# --- report -----------------------------------------------------------------------------------------
@dataclass
class Row:
    """A cell of the table: the same requests to the bare app and to the bot, back to back."""

    phase: str
    concurrency: int
    kind: str
    bare: Cell
    bot: Cell
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.bot.percentile(0.99) / self.bare.percentile(0.99)

    @property
    def passed(self) -> bool:
        return self.ratio <= TARGET_RATIO and self.bot.failures == 0 and self.bot.n > 0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def codes_text(cell: Cell) -> str:
    return ", ".join(f"{status} x{count}" for status, count in cell.codes.most_common())


def print_report(rows: list[Row]) -> None:
    header = (
        f"{'phase':<6}{'conc':>5} {'kind':<8}{'n bare/bot':>12}{'bare p50':>10}{'bare p99':>10}"
        f"{'bot p50':>10}{'bot p99':>10}{'bot max':>10}{'fail bare/bot':>15}{'p99 bot/bare':>14}"
    )
    print("\nack latency in ms (a timeout counts as its 3 s)")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.phase:<6}{r.concurrency:>5} {r.kind:<8}{f'{r.bare.n}/{r.bot.n}':>12}"
            f"{ms(r.bare.percentile(0.5)):>10}{ms(r.bare.percentile(0.99)):>10}"
            f"{ms(r.bot.percentile(0.5)):>10}{ms(r.bot.percentile(0.99)):>10}{ms(r.bot.max):>10}"
            f"{f'{r.bare.failures}/{r.bot.failures}':>15}{r.ratio:>13.2f}x"
        )
    print(
        f"\ntarget: bot p99 within {TARGET_RATIO}x of the bare app's, and no request answered other than 200"
    )
    for r in rows:
        verdict = "PASS" if r.passed else "FAIL"
        detail = f"p99 {r.ratio:.2f}x; bot codes: {codes_text(r.bot)}"
        for name, cell in (("bot", r.bot), ("bare app", r.bare)):
            if cell.n < cell.planned:
                detail += f"; {name}: {cell.n} of {cell.planned} sent before the time cap"
        if r.bare.failures:
            detail += (
                f"; BARE APP FAILED TOO ({codes_text(r.bare)}): the machine or load generator is suspect"
            )
        if r.note:
            detail += f"; {r.note}"
        print(f"  {verdict}  {r.phase} c={r.concurrency} {r.kind}: {detail}")
    cells = [cell for r in rows for cell in (r.bare, r.bot)]
    per_request = sum(c.client_cpu for c in cells) / max(1, sum(c.n for c in cells))
    busiest = max((c.client_cpu / c.seconds for c in cells if c.seconds), default=0.0)
    print(
        f"\nload generator: {per_request * 1e6:.0f} µs CPU per request, at most {busiest:.2f} CPU in a cell; "
        f"machine: {os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}"
    )
    passed = sum(r.passed for r in rows)
    print(f"{passed} of {len(rows)} cells meet the target")


# --- main -------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[5, 50], help="requests in flight")
    parser.add_argument("--requests", type=int, nargs="+", default=[200, 500], help="per cell, per level")
    parser.add_argument("--cell-seconds", type=float, default=8, help="stop sending after this long")
    parser.add_argument("--rounds", type=int, default=4, help="bot/bare alternations per cell")
    parser.add_argument("--drain-seconds", type=float, default=15, help="wait for the bot to go quiet")
    parser.add_argument("--phases", nargs="+", choices=["idle", "busy"], default=["idle", "busy"])
    parser.add_argument("--slow-jobs", type=int, default=10, help="slow plans in flight when busy")
    parser.add_argument("--slow-mb", type=float, default=10, help="size of the slow migration")
    parser.add_argument("--threads", type=int, help="bare app's waitress threads (default: the bot's)")
    parser.add_argument("--load-processes", type=int, default=5, help="processes sending the requests")
    args = parser.parse_args()
    if len(args.requests) != len(args.concurrency):
        parser.error("give one --requests count per --concurrency level")
    return args


@dataclass
class Bench:
    """Everything one run measures with; built by ``setup``, torn down by its ExitStack."""

    args: argparse.Namespace
    load: LoadGenerator
    bot: Server
    bare: Server
    stats_url: str
    spec: dict[str, str]
    blackhole: Blackhole
    slow: SlowJobs


def setup(args: argparse.Namespace, stack: contextlib.ExitStack) -> Bench:
    from tests.slack.conftest import AUTHOR, CHANNEL, SECRET
    from tests.slack.fake_api import TOKEN

    load = LoadGenerator(args.load_processes)  # spawned before any thread of ours starts
    stack.callback(load.close)
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ack-bench-")))
    config = write_bot_config(tmp, write_migrations(tmp, args.slow_mb))
    blackhole = Blackhole()
    stack.callback(blackhole.close)
    fake = start_fake(tmp, stack)
    db = tmp / "state.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    env.update(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake["api_url"])
    bot_env = {
        **env,
        "DATABASE_URL": f"sqlite:///{db}",
        "MIGRATE_BOT_CONFIG": str(config),
        SLOW_DSN_ENV: blackhole.dsn,
    }
    bot = Server("bot", [sys.executable, "-m", "bot.cli", "serve"], bot_env, tmp / "bot.log")
    bare_argv = [sys.executable, str(ROOT / "bench" / "bare_bolt.py")]
    threads, source = (args.threads, "--threads") if args.threads else bot_threads(config)
    bare = Server("bare", bare_argv, {**env, "THREADS": str(threads)}, tmp / "bare.log")
    for server in (bot, bare):
        stack.callback(server.stop)
        server.start()
    for server in (bot, bare):
        server.wait_healthy()
    print(f"bot and bare Bolt app up; bare app's waitress threads: {threads} ({source})")

    spec = {"secret": SECRET, "channel": CHANNEL, "author": AUTHOR, "fake_base": fake["base_url"]}
    body = request_body("click-plan", spec)
    post(bot.url, body, signed_headers(body, SECRET))
    plan_id, message_ts = announced_plan(db, CLICK_FILE)
    spec.update(plan_id=str(plan_id), message_ts=message_ts)
    slow = SlowJobs([bot, bare], spec, db, args.slow_jobs)
    bench = Bench(args, load, bot, bare, fake["stats_url"], spec, blackhole, slow)
    for server in (bot, bare):
        warm_up(bench, server)
    return bench


def warm_up(bench: Bench, server: Server) -> None:
    """Unmeasured requests of each kind, so no cell pays for first use; also spawns the load pool."""
    procs = bench.args.load_processes
    for kind in KINDS:
        bench.load.run(server.url, kind, bench.spec, procs, 2 * procs, 30)
    wait_quiet(bench.stats_url, bench.args.drain_seconds)


def start_busy(bench: Bench) -> None:
    """Launch the slow jobs and wait until the bot is on them (its first connect reaches the target)."""
    bench.slow.top_up()
    bench.slow.wait_sent()
    deadline = time.monotonic() + 10
    while bench.blackhole.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.1)


def measure(bench: Bench, phase: str, concurrency: int, total: int, kind: str) -> Row:
    """Rounds of the bot, then the bare app with the bot paused, so a change in the machine's other load
    falls on both alike; then let the bot finish what the cell started."""
    args, bot = bench.args, bench.bot
    notes = []
    if phase == "busy":
        bench.slow.top_up()
        in_flight, reached = bench.slow.in_flight(), bench.blackhole.accepted
        notes.append(f"{in_flight} slow jobs in flight ({reached} reached the target so far)")
    print(f"{phase} c={concurrency} {kind}:", end="", flush=True)
    bot_parts, bare_parts = [], []
    bot_own = bot_group = bare_own = 0.0
    for i in range(args.rounds):
        count, seconds = total // args.rounds + (i < total % args.rounds), args.cell_seconds / args.rounds
        own, group = bot.cpu_seconds()
        bot_parts.append(bench.load.run(bot.url, kind, bench.spec, concurrency, count, seconds))
        own_after, group_after = bot.cpu_seconds()
        bot_own, bot_group = bot_own + own_after - own, bot_group + group_after - group
        with bot.paused():
            before = bench.bare.cpu_seconds()[0]
            bare_parts.append(bench.load.run(bench.bare.url, kind, bench.spec, concurrency, count, seconds))
            bare_own += bench.bare.cpu_seconds()[0] - before
        print(f" {i + 1}", end="", flush=True)
    print(flush=True)
    bot_cell, bare_cell = Cell.merge(bot_parts), Cell.merge(bare_parts)
    notes.append(
        f"acks cost {bot_own / max(bot_cell.n, 1) * 1000:.2f} ms CPU each (bare "
        f"{bare_own / max(bare_cell.n, 1) * 1000:.2f}); bot with its workers used "
        f"{bot_group / max(bot_cell.seconds, 1e-9):.2f} CPU"
    )
    if not wait_quiet(bench.stats_url, args.drain_seconds) and phase == "idle":
        notes.append(f"bot restarted after: its backlog did not drain in {args.drain_seconds:.0f} s")
        bot.restart()
        warm_up(bench, bot)
    return Row(phase, concurrency, kind, bare_cell, bot_cell, "; ".join(notes))


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> list[Row]:
    bench = setup(args, stack)
    rows: list[Row] = []
    for phase in args.phases:
        if phase == "busy":
            start_busy(bench)
        for concurrency, total in zip(args.concurrency, args.requests, strict=True):
            rows += [measure(bench, phase, concurrency, total, kind) for kind in KINDS]
    stats = fake_stats(bench.stats_url)
    print(
        f"fake Slack: {stats['calls']} Web API calls, {stats['responses']} response_url posts, "
        f"{stats['invalid_payloads']} invalid payloads; slow jobs launched {bench.slow.launched}, "
        f"finished {bench.slow.finished()}"
    )
    return rows


def main() -> int:
    args = parse_args()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            rows = run(args, stack)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping every process", file=sys.stderr)
            return 130
        except (RuntimeError, ImportError) as err:
            print(f"\ncould not measure: {err}", file=sys.stderr)
            return 2
    print_report(rows)
    print(f"({time.monotonic() - started:.0f} s)")
    return 0  # a measurement: the verdict lines say pass or fail


if __name__ == "__main__":
    sys.exit(main())
