"""Benchmark: many monitor windows at once in one bot process, and how fast a breach starts a rollback.

Run: ``python bench/monitor_bench.py [--windows N] [--seconds S]``. Starts an embedded PostgreSQL (the
target, whose database signals every sample reads) and a real HTTP server answering the application's
error rate, latency and health as JSON; the bot's store is SQLite, as on the embedded defaults. Opens one
window with a 1-second interval and runs the leader's watch for S seconds (the baseline), then N windows
at once for S seconds, one more window among them breaching (8 % errors in its first minutes).

Prints, for each run: the tick lag (each sample's time minus the time it was due, reconstructed from the
stored samples: due = the previous due + the interval, or the previous sample when that was later), its
p50/p99/max, samples taken against samples due, and the process's CPU use; the ratios of the N-window run
to the baseline; and the time from the breach's second bad sample (the one that completes the streak) to
the automatic rollback's order reaching the runner. Targets: p99 lag under 1 s with N = 200, breach to
rollback under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.app import Services, build_services
from bot.config import Settings, parse_config
from bot.embedded import create_database, start_server
from bot.monitor.loop import MonitorLoop
from bot.states import PlanState
from storage.models import MonitorRecord, PlanRecord, SampleRecord, aware

INTERVAL = 1.0
TARGET_LAG_P99 = 1.0
TARGET_BREACH = 2.0
ROLES = {
    role: {"users": [f"U{role.upper().replace('_', '')}"]}
    for role in ("technical_lead", "product_owner", "cto", "qa", "architect", "security", "on_call")
}


class Application:
    """The application's metrics over real HTTP: ``/<env>/error_rate`` and ``/<env>/latency`` as JSON,
    ``/<env>/health`` 200; ``rates`` set per environment."""

    def __init__(self) -> None:
        self.rates: dict[str, float] = {}
        rates = self.rates

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                env, metric = self.path.strip("/").split("/")
                body = json.dumps({"value": rates.get(env, 0.2) if metric == "error_rate" else 0.1}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sources(self, env: str) -> dict[str, Any]:
        def http(metric: str, field: str | None = "value") -> dict[str, Any]:
            return {"http": {"url": f"{self.url}/{env}/{metric}", "timeout_seconds": 2, "json_field": field}}

        return {"error_rate": http("error_rate"), "latency": http("latency"), "health": http("health", None)}


def services_for(workdir: Path, app: Application, windows: int, environments: int) -> Services:
    """Environments on the target (``steady0`` … for the N windows, ``breach`` for the one that breaks),
    a tiny migration per window, the guide's rules with a 1-second interval."""
    migrations = workdir / "migrations"
    migrations.mkdir()
    for number in range(windows + 2):
        (migrations / f"{number:04d}_bench.sql").write_text(f"CREATE TABLE bench_{number} (id int);\n")
    env = {
        "tier": "staging",
        "dsn_env": "BENCH_TARGET",
        "migrations_dir": str(migrations),
        "server_version_num": 180000,
    }
    data = {
        "environments": {
            name: {**env, "monitor": {"sources": app.sources(name)}}
            for name in [*(f"steady{i}" for i in range(environments)), "breach"]
        },
        "roles": ROLES,
        "policy": {"monitor": {"window_minutes": 30, "interval_seconds": INTERVAL}},
    }
    settings = Settings(database_url=f"sqlite:///{workdir}/state.db")
    return build_services(settings, parse_config(data, workdir))


def open_windows(services: Services, envs: list[str], numbers: range) -> list[int]:
    """A plan per migration (on the environments in turn), put straight into ``monitoring`` (its run is not
    what is measured) with its baseline read and its window opened as after a real apply."""
    plan_ids = []
    for number in numbers:
        submission = services.planner.submit(
            env_name=envs[number % len(envs)],
            file_arg=f"{number:04d}_bench.sql",
            author="UAUTHOR",
            typed_in="C0BENCH",
        )
        assert submission.plan is not None
        plan_ids.append(submission.plan.id)
    with services.db.session() as session:
        session.execute(
            update(PlanRecord).where(PlanRecord.id.in_(plan_ids)).values(state=PlanState.MONITORING.value)
        )
    for plan_id in plan_ids:
        services.monitors.before_apply(plan_id)
        services.monitors.applied(plan_id)
    return plan_ids


@contextmanager
def cpu_seconds() -> Iterator[list[float]]:
    """The process's CPU seconds (user + system, every thread) spent inside the block."""
    spent: list[float] = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    yield spent
    after = resource.getrusage(resource.RUSAGE_SELF)
    spent.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def watch(services: Services, seconds: float) -> float:
    """The leader's watch for ``seconds``; the CPU seconds it cost."""
    loop = MonitorLoop(services.monitors, services.incidents)
    with cpu_seconds() as spent:
        loop.lead()
        time.sleep(seconds)
        loop.shutdown(timeout=10)
    return spent[0]


def taken_at(session: Session, monitor_id: int) -> list[datetime]:
    query = select(SampleRecord.taken_at).where(SampleRecord.monitor_id == monitor_id)
    return list(session.scalars(query.order_by(SampleRecord.id)))


def lags(services: Services, plan_ids: list[int], until: datetime) -> tuple[list[float], int]:
    """Each stored sample's lag behind its due time, and how many samples fell due before ``until``."""
    found, due_count = [], 0
    with services.db.session() as session:
        for plan_id in plan_ids:
            record = session.scalars(select(MonitorRecord).where(MonitorRecord.plan_id == plan_id)).one()
            taken = session.scalars(
                select(SampleRecord.taken_at)
                .where(SampleRecord.monitor_id == record.id)
                .order_by(SampleRecord.id)
            ).all()
            assert record.opened_at is not None
            due = aware(record.opened_at) + timedelta(seconds=INTERVAL)
            for moment in map(aware, taken):
                found.append((moment - due).total_seconds())
                due = max(due + timedelta(seconds=INTERVAL), moment)
            while due <= until:  # due but never taken
                due_count += 1
                due += timedelta(seconds=INTERVAL)
            due_count += len(taken)
    return found, due_count


def report(name: str, found: list[float], due: int, cpu: float, seconds: float) -> dict[str, float]:
    ordered = sorted(found)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    result = {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1], "cpu": cpu / seconds * 100}
    print(
        f"{name:>24}: lag p50 {result['p50'] * 1000:6.0f} ms, p99 {p99 * 1000:6.0f} ms, max "
        f"{result['max'] * 1000:6.0f} ms; {len(found)} samples of {due} due; "
        f"CPU {result['cpu']:.0f}% of a core"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--environments", type=int, default=1, help="spread the windows over this many environments"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    admin = start_server(workdir / "pg")
    os.environ["BENCH_TARGET"] = create_database(admin, "monitor_bench")
    app = Application()
    services = services_for(workdir, app, args.windows, args.environments)
    steady = [f"steady{i}" for i in range(args.environments)]
    ordered: list[float] = []
    services.incidents.roll_back = lambda order: ordered.append(time.time())  # the runner's door: timed

    baseline_ids = open_windows(services, steady[:1], range(1))
    cpu = watch(services, args.seconds)
    base = report("1 window", *lags(services, baseline_ids, services.clock()), cpu, args.seconds)
    services.monitors.stopped(baseline_ids[0], "the baseline run is over")

    plan_ids = open_windows(services, steady, range(1, args.windows + 1))
    app.rates["breach"] = 8.0  # over 5 % in the first 10 minutes: rolls back by itself after 2 samples
    breach_ids = open_windows(services, ["breach"], range(args.windows + 1, args.windows + 2))
    cpu = watch(services, args.seconds)
    many = report(
        f"{args.windows} windows in {args.environments} env",
        *lags(services, plan_ids, services.clock()),
        cpu,
        args.seconds,
    )
    print(
        f"{'ratio':>24}: p50 {many['p50'] / base['p50']:.1f}x, p99 {many['p99'] / base['p99']:.1f}x, "
        f"CPU {many['cpu'] / max(base['cpu'], 0.1):.1f}x"
    )

    with services.db.session() as session:
        record = session.scalars(select(MonitorRecord).where(MonitorRecord.plan_id == breach_ids[0])).one()
        second_bad = session.scalars(
            select(SampleRecord.taken_at)
            .where(SampleRecord.monitor_id == record.id)
            .order_by(SampleRecord.id)
        ).all()[1]
    assert ordered, "the breach never ordered a rollback"
    breach = ordered[0] - aware(second_bad).timestamp()
    p99_ok = "met" if many["p99"] < TARGET_LAG_P99 else "MISSED"
    breach_ok = "met" if breach < TARGET_BREACH else "MISSED"
    print(f"{'breach':>24}: second bad sample to rollback ordered {breach * 1000:.0f} ms")
    print(
        f"{'targets':>24}: p99 lag < {TARGET_LAG_P99:g} s {p99_ok}; "
        f"breach to rollback < {TARGET_BREACH:g} s {breach_ok}"
    )
    return 0 if p99_ok == breach_ok == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
