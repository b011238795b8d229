"""Where the window's samples come from, behind one port: a Source reads one metric and never raises.

No data is not good data: an empty result, NaN, a stale series, an unreachable source or a timeout is an
unknown sample (``value`` None) that says why, never a guessed number. Every read is bounded by its own
deadline (see bot.monitor.deadline), so a silent service cannot hold the window.
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from bot.execution.errors import StepFailed
from bot.execution.runbook import run_command
from bot.monitor.config import CommandConfig, HttpConfig, PrometheusConfig, SqlConfig
from bot.monitor.deadline import Attempt, Bounded, Unreadable, read_target, reason

if TYPE_CHECKING:
    from bot.config import EnvironmentConfig

log = logging.getLogger(__name__)

BODY_LIMIT = 1 << 20  # bytes of an answer read at most: a health page or a query result is far smaller
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Sample:
    """One reading of one metric at ``taken_at`` (aware UTC, from the window's clock).

    ``metric``: ``error_rate`` (percent, 0-100), ``latency`` (any unit, compared with a baseline),
    ``health`` (1.0 passing, 0.0 failing), or a database signal's name (bot.monitor.signals).
    ``value`` None is unknown; ``detail`` says what was read or why it is unknown, redacted and short.
    """

    metric: str
    value: float | None
    detail: str
    taken_at: datetime

    @property
    def known(self) -> bool:
        return self.value is not None


def sample(metric: str, value: float | None, detail: str, now: datetime) -> Sample:
    """A Sample with ``detail`` redacted and shortened; a value that is not finite is unknown."""
    if value is not None and not math.isfinite(value):
        value, detail = None, f"{value} is not a number to judge: {detail}"
    return Sample(metric, value, reason(detail), now)


class Source(Protocol):
    metric: str

    def read(self, now: datetime) -> Sample:
        """The metric now; never raises, and returns by the source's own deadline."""
        ...


def _guarded(metric: str, now: datetime, read: Callable[[], tuple[float | None, str]]) -> Sample:
    """``read``'s value and detail as a Sample; Unreadable, and any error, as an unknown one."""
    try:
        value, detail = read()
    except Unreadable as err:
        value, detail = None, str(err)
    except Exception as err:  # a source never takes the window down; the log keeps the traceback
        log.exception("monitor source %s failed", metric)
        value, detail = None, f"the read failed: {type(err).__name__}: {err}"
    return sample(metric, value, detail, now)


def _get(url: str, attempt: Attempt) -> tuple[int, bytes]:
    """GET ``url`` with what is left of the attempt's time: status and body (an HTTP error's too)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=max(0.05, attempt.remaining())) as response:
            return response.status, response.read(BODY_LIMIT)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read(BODY_LIMIT)
    except urllib.error.URLError as err:
        raise Unreadable(f"{_host(url)} unreachable: {err.reason}") from None
    except TimeoutError:
        raise Unreadable(f"{_host(url)}: no answer within {attempt.seconds:g} s") from None
    except OSError as err:
        raise Unreadable(f"{_host(url)}: {err}") from None


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _float(text: str, what: str) -> float:
    """A number as Prometheus writes one ("NaN", "+Inf" included) that is finite, else Unreadable."""
    try:
        value = float(text)
    except ValueError:
        raise Unreadable(f"{what} is not a number: {text!r}") from None
    if math.isnan(value):
        raise Unreadable(f"{what} is NaN (no traffic in the query's window? 0/0 is NaN)")
    if math.isinf(value):
        raise Unreadable(f"{what} is {text} (a division by zero?)")
    return value


class PrometheusSource:
    """An instant query on Prometheus's HTTP API, checked for staleness (up_query, max_age_seconds)."""

    def __init__(self, metric: str, config: PrometheusConfig) -> None:
        self.metric = metric
        self.config = config
        self._endpoint = config.url.rstrip("/") + "/api/v1/query"
        self._bounded = Bounded()

    def read(self, now: datetime) -> Sample:
        return _guarded(self.metric, now, lambda: self._bounded.run(self._read, self.config.timeout_seconds))

    def _read(self, attempt: Attempt) -> tuple[float, str]:
        config = self.config
        if config.up_query:
            up = self._query(config.up_query, attempt)
            if not up:
                raise Unreadable(f"up_query answers nothing: is the application scraped? ({config.up_query})")
            down = [(labels, text) for labels, _, text in up if text != "1"]
            if down:
                labels, text = down[0]
                raise Unreadable(f"the source is not up ({_series(labels)} = {text}): its values are stale")
        found = self._query(config.query, attempt)
        if not found:
            raise Unreadable(f"the query answers nothing (no such series?): {config.query}")
        if len(found) > 1:
            raise Unreadable(
                f"the query answers {len(found)} series ({_series(found[0][0])}, …): aggregate them to one"
            )
        _, at, text = found[0]
        value = _float(text, "the query's answer")
        age = ""
        if config.max_age_seconds is not None:
            stamped = self._query(f"timestamp({config.query})", attempt)
            if len(stamped) != 1:
                raise Unreadable(
                    "the sample's timestamp cannot be read (timestamp() of the query answers "
                    f"{len(stamped)} series)"
                )
            seconds = at - _float(stamped[0][2], "the sample's timestamp")
            if seconds > config.max_age_seconds:
                raise Unreadable(
                    f"the sample is {seconds:.1f} s old (max_age_seconds {config.max_age_seconds:g}): "
                    f"stale value {text}"
                )
            age = f", {seconds:.1f} s old"
        scaled = f" × {config.scale:g}" if config.scale != 1 else ""
        return value * config.scale, f"Prometheus: {text}{scaled}{age} ({config.query})"

    def _query(self, query: str, attempt: Attempt) -> list[tuple[dict[str, str], float, str]]:
        """The query's series as (labels, evaluation time, value text); a scalar is one unlabelled."""
        params = {"query": query, "timeout": f"{max(0.1, attempt.remaining()):.3f}"}  # seconds
        status, body = _get(f"{self._endpoint}?{urllib.parse.urlencode(params)}", attempt)
        try:
            answer = json.loads(body)
        except ValueError:
            raise Unreadable(f"Prometheus answered HTTP {status} with no JSON: {body[:200]!r}") from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            error = answer.get("error") if isinstance(answer, dict) else None
            error = error or body[:200].decode(errors="replace")
            raise Unreadable(f"Prometheus answered HTTP {status}: {error}")
        data = answer["data"]
        if data["resultType"] == "vector":
            return [(item["metric"], float(item["value"][0]), item["value"][1]) for item in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][0]), data["result"][1])]
        raise Unreadable(f"the query answers a {data['resultType']}, not one number: {query}")


def _series(labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__")
    return f"{labels.get('__name__', '')}{{{inner}}}"


class HttpSource:
    """A health endpoint: 2xx in time is 1.0, anything else 0.0; with ``json_field``, a number from its
    JSON body, unknown when the request fails (a failed request is no latency of 0)."""

    def __init__(self, metric: str, config: HttpConfig) -> None:
        self.metric = metric
        self.config = config
        self._bounded = Bounded()

    def read(self, now: datetime) -> Sample:
        config = self.config
        if config.json_field:
            return _guarded(self.metric, now, lambda: self._bounded.run(self._field, config.timeout_seconds))
        try:
            status, _ = self._bounded.run(lambda attempt: _get(config.url, attempt), config.timeout_seconds)
        except Unreadable as err:
            return sample(self.metric, 0.0, f"failing: {err}", now)
        except Exception as err:
            log.exception("monitor source %s failed", self.metric)
            return sample(self.metric, 0.0, f"failing: {type(err).__name__}: {err}", now)
        passing = 200 <= status < 300
        return sample(self.metric, float(passing), f"HTTP {status} from {_host(config.url)}", now)

    def _field(self, attempt: Attempt) -> tuple[float, str]:
        status, body = _get(self.config.url, attempt)
        if not 200 <= status < 300:
            raise Unreadable(f"HTTP {status} from {_host(self.config.url)}")
        try:
            found: Any = json.loads(body)
        except ValueError:
            raise Unreadable(f"the body is not JSON: {body[:200]!r}") from None
        for part in self.config.json_field.split("."):  # type: ignore[union-attr]
            if isinstance(found, dict) and part in found:
                found = found[part]
            elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
                found = found[int(part)]
            else:
                raise Unreadable(f"the body has no {self.config.json_field}")
        if isinstance(found, bool) or not isinstance(found, int | float):
            raise Unreadable(f"{self.config.json_field} is not a number: {json.dumps(found)[:100]}")
        return float(found), f"{self.config.json_field} = {found} from {_host(self.config.url)}"


class SqlSource:
    """A query on the target answering one number, in a read-only transaction under statement_timeout."""

    def __init__(self, metric: str, config: SqlConfig, dsn: str | None, dsn_env: str | None) -> None:
        self.metric = metric
        self.config = config
        self._dsn = dsn
        self._dsn_env = dsn_env
        self._bounded = Bounded()

    def read(self, now: datetime) -> Sample:
        return _guarded(self.metric, now, self._read)

    def _read(self) -> tuple[float, str]:
        dsn = self._dsn
        if not dsn:
            raise Unreadable(f"no target DSN: {self._dsn_env or 'dsn_env'} is not set")
        return self._bounded.run(
            lambda attempt: read_target(dsn, attempt, self._one_number), self.config.timeout_seconds
        )

    def _one_number(self, conn: psycopg.Connection) -> tuple[float, str]:
        cursor = conn.execute(self.config.query)
        rows = cursor.fetchmany(2) if cursor.description else []
        if len(rows) != 1 or len(rows[0]) != 1:
            shape = f"{len(rows[0])} columns" if len(rows) == 1 else f"{'no' if not rows else 'several'} rows"
            raise Unreadable(f"the query answers {shape}, not one number")
        found = rows[0][0]
        if found is None:
            raise Unreadable("the query answers NULL")
        if isinstance(found, bool) or not isinstance(found, int | float | Decimal):
            raise Unreadable(f"the query answers a {type(found).__name__}, not a number: {str(found)[:100]}")
        return float(found), f"SQL: {found} ({self.config.query})"


class CommandSource:
    """A command printing a number, run as runbook commands are (bot.execution.runbook.run_command): no
    shell, its own process group killed at the timeout, its output redacted. Its stdout and stderr come
    interleaved, so "the last line" is the last either printed: give a ``pattern`` when a tool may warn
    after its number."""

    def __init__(self, metric: str, config: CommandConfig) -> None:
        self.metric = metric
        self.config = config
        self._pattern = re.compile(config.pattern) if config.pattern else None

    def read(self, now: datetime) -> Sample:
        return _guarded(self.metric, now, self._read)

    def _read(self) -> tuple[float, str]:
        config = self.config
        try:
            result = run_command(config.argv, timeout=config.timeout_seconds, check=False)
        except StepFailed as err:
            raise Unreadable(err.message) from None
        lines = [line for line in result.output.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        if result.exit_code != 0:
            raise Unreadable(f"{config.argv[0]} exited with code {result.exit_code}: {last}")
        if self._pattern:
            found = self._pattern.search(result.output)
            text = (found.group(found.re.groups) if found else None) or ""
            where = f"pattern {self._pattern.pattern!r}"
        else:
            found = _NUMBER.search(last)
            text = found.group() if found else ""
            where = "the last line"
        if not _NUMBER.fullmatch(text.strip()):
            raise Unreadable(f"no number in {where} of {config.argv[0]}'s output: {last[:200]!r}")
        return float(text), f"{config.argv[0]} printed {text.strip()}"


def build_sources(env: EnvironmentConfig, environ: Mapping[str, str] | None = None) -> dict[str, Source]:
    """The environment's configured sources by metric; its SQL sources read its target (``dsn_env`` in
    ``environ``, the process's environment when None)."""
    sources: dict[str, Source] = {}
    for metric, source in env.monitor.sources.configured().items():
        settings = source.settings
        if isinstance(settings, PrometheusConfig):
            sources[metric] = PrometheusSource(metric, settings)
        elif isinstance(settings, HttpConfig):
            sources[metric] = HttpSource(metric, settings)
        elif isinstance(settings, SqlConfig):
            sources[metric] = SqlSource(metric, settings, env.dsn(environ), env.dsn_env)
        else:
            sources[metric] = CommandSource(metric, settings)
    return sources
