"""A fake Slack Web API on 127.0.0.1: records every call and answers the way Slack does.

It speaks HTTP on a real socket (port 0, so tests run in parallel), accepts form and JSON bodies,
checks the bearer token, validates every Block Kit payload against Slack's limits, and can be told to
answer the next call of a method with ``ok: false`` or HTTP 429 with ``Retry-After``. It also serves
``response_url``s and the upload URL of the two-step file upload.

Fault tests need Slack's bad days too: an outage of some methods for a while (429s, or 500/503 with an
HTML page as a load balancer sends), the next n calls failing, and a call held unanswered (``stall``)
so the bot can be killed with its request in flight. Every call records how it was answered, so a
test counts what Slack actually accepted (``delivered``), not what the bot tried.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from handlers.blockkit import BlockKitError, validate_message, validate_view

TOKEN = "xoxb-test-token-0000"
APP_TOKEN = "xapp-test-token-0000"  # Socket Mode's: it alone may open a connection
MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}
VIEW_METHODS = {"views.open", "views.update", "views.push"}
REQUIRED = {
    "chat.postMessage": ["channel"],
    "chat.update": ["channel", "ts"],
    "chat.postEphemeral": ["channel", "user"],
    "chat.getPermalink": ["channel", "message_ts"],
    "views.open": ["trigger_id", "view"],
    "views.update": ["view"],
    "views.push": ["trigger_id", "view"],
    "usergroups.users.list": ["usergroup"],
    "users.info": ["user"],
    "conversations.info": ["channel"],
    "files.getUploadURLExternal": ["filename", "length"],
    "files.completeUploadExternal": ["files"],
}
ERROR_FOR_MISSING = {
    "channel": "channel_not_found",
    "ts": "message_not_found",
    "trigger_id": "invalid_trigger_id",
}
FAULT_KINDS = ("429", "500", "503")
# What Slack's edge sends on a bad day: a page for people, not JSON, so a client must not parse it.
ERROR_PAGES = {
    500: "<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1></body></html>",
    503: "<html><head><title>503 Service Unavailable</title></head>"
    "<body><h1>Service Unavailable</h1><p>Slack is having trouble.</p></body></html>",
}
T = TypeVar("T")
Answer = tuple[int, dict[str, str], dict[str, Any] | str]


@dataclass
class Call:
    """One request to the Web API and, once answered, how: ``status`` None means never answered."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    status: int | None = None
    ok: bool | None = None
    answer: dict[str, Any] | None = None

    @property
    def delivered(self) -> bool:
        """Slack accepted it (HTTP 200, ``ok: true``): only these are visible in the channel."""
        return self.status == 200 and self.ok is True


@dataclass(frozen=True)
class SharedFile:
    """A file shared by ``files.completeUploadExternal``: its bytes as uploaded, and where it went."""

    id: str
    filename: str
    title: str | None
    content: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass(frozen=True)
class _Outage:
    methods: frozenset[str]
    kind: str
    start: float
    end: float

    def covers(self, method: str, at: float) -> bool:
        return method in self.methods and self.start <= at < self.end


class FakeSlack:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.uploads: dict[str, bytes] = {}
        self.files: list[SharedFile] = []  # shared, in order
        self._upload_urls: dict[str, str] = {}  # file id -> its filename
        self.invalid_payloads: list[str] = []
        self.group_members: dict[str, list[str]] = {}
        self.stalled: list[Call] = []
        self._failures: dict[str, list[tuple[str, Any]]] = {}
        self._outages: list[_Outage] = []
        self._stalling: set[str] = set()
        self._released = threading.Event()
        self._ts = itertools.count(1)
        self._changed = threading.Condition()  # an RLock: wait predicates may call calls_to()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()  # no handler thread stays parked on a stall
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "default") -> str:
        return f"{self.base_url}/response/{name}"

    # --- scripting ----------------------------------------------------------------------------
    def fail_next(self, method: str, error: str) -> None:
        """The next call of ``method`` answers ``{"ok": false, "error": error}``."""
        self._script(method, "error", error)

    def rate_limit_next(self, method: str, retry_after: int = 1) -> None:
        """The next call of ``method`` answers HTTP 429 with ``Retry-After``."""
        self._script(method, "429", retry_after)

    def fail_times(self, method: str, n: int, kind: str) -> None:
        """The next ``n`` calls of ``method`` fail: ``kind`` "429" (Retry-After 1), "500" or "503"."""
        for _ in range(n):
            self._script(method, _fault_kind(kind), 1)

    def outage(self, methods: str | Iterable[str], seconds: float, kind: str, *, after: float = 0) -> None:
        """For ``seconds`` (starting ``after`` seconds from now) every call of ``methods`` fails like
        ``fail_times``; windows may be queued back to back to change the weather (429s, then 503s)."""
        start = time.monotonic() + after
        names = frozenset([methods] if isinstance(methods, str) else methods)
        with self._changed:
            self._outages.append(_Outage(names, _fault_kind(kind), start, start + seconds))

    def stall(self, method: str) -> None:
        """Hold every call of ``method`` unanswered until ``release()``: a request in flight to kill."""
        with self._changed:
            self._stalling.add(method)

    def release(self) -> None:
        """Close the held calls without an answer, as if Slack never processed them; stop stalling."""
        with self._changed:
            self._stalling.clear()
            released, self._released = self._released, threading.Event()
        released.set()

    def _script(self, method: str, kind: str, value: Any) -> None:
        with self._changed:
            self._failures.setdefault(method, []).append((kind, value))

    # --- inspection ---------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.method == method]

    def last(self, method: str) -> Call:
        calls = self.calls_to(method)
        assert calls, f"no call to {method}; calls: {[c.method for c in self.calls]}"
        return calls[-1]

    def delivered(self, method: str) -> list[Call]:
        """The calls of ``method`` Slack accepted (HTTP 200, ``ok: true``), in order."""
        return [c for c in self.calls_to(method) if c.delivered]

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """Wait until ``predicate()`` (checked on every call and answer) is truthy, and return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout} s for {what}; Slack saw:\n{self.summary()}")
                self._changed.wait(left)
            return result

    def _wait_count(self, get: Callable[[], list[T]], count: int, timeout: float, what: str) -> list[T]:
        """``wait_until`` for "at least ``count`` of these", where zero is a count too."""
        found: list[T] = []

        def enough() -> bool:
            nonlocal found
            found = get()
            return len(found) >= count

        self.wait_until(enough, timeout, what)
        return found

    def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until ``method`` was called ``count`` times (lazy listeners run after the ack)."""
        return self._wait_count(lambda: self.calls_to(method), count, timeout, f"{count} call(s) of {method}")

    def wait_for_delivered(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until Slack accepted ``count`` calls of ``method``; failed and held ones do not count."""
        return self._wait_count(
            lambda: self.delivered(method), count, timeout, f"{count} delivered call(s) of {method}"
        )

    def wait_for_files(self, count: int = 1, timeout: float = 10) -> list[SharedFile]:
        """Wait until ``count`` files are shared (``files.completeUploadExternal`` accepted them)."""
        return self._wait_count(lambda: list(self.files), count, timeout, f"{count} shared file(s)")

    def wait_for_stalled(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until ``count`` calls of ``method`` are held by ``stall``."""
        return self._wait_count(
            lambda: [c for c in self.stalled if c.method == method],
            count,
            timeout,
            f"{count} stalled call(s) of {method}",
        )

    def wait_for_response(
        self, name: str = "default", count: int = 1, timeout: float = 10
    ) -> list[dict[str, Any]]:
        return self._wait_count(
            lambda: [r for n, r in self.responses if n == name],
            count,
            timeout,
            f"{count} response(s) to {name}",
        )

    def summary(self) -> str:
        """One line per call and response_url reply, for failure messages: when, what, how answered."""
        with self._changed:
            calls, responses = list(self.calls), list(self.responses)
        start = calls[0].at if calls else 0.0
        lines = [_describe(c, c.at - start) for c in calls]
        lines += [f"response {name}: {str(body.get('text', ''))[:100]!r}" for name, body in responses]
        return "\n".join(lines) or "(no calls)"

    # --- answering ----------------------------------------------------------------------------
    def _receive(self, method: str, args: dict[str, Any], headers: dict[str, str]) -> Call:
        call = Call(method, args, headers)
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return call

    def _hold(self, call: Call) -> bool:
        """Park a call of a stalled method until ``release()``; True when it was held."""
        with self._changed:
            if call.method not in self._stalling:
                return False
            released = self._released
            self.stalled.append(call)
            self._changed.notify_all()
        released.wait()
        return True

    def _answered(self, call: Call, status: int, answer: dict[str, Any] | str) -> None:
        """Recorded before the answer is written: from then on Slack has processed the call."""
        with self._changed:
            call.status = status
            if isinstance(answer, dict):
                call.ok, call.answer = answer.get("ok") is True, answer
            self._changed.notify_all()

    def _fault(self, method: str) -> tuple[str, Any] | None:
        """The scripted failure (``fail_next`` & co., in order) or outage this call meets, if any."""
        now = time.monotonic()
        with self._changed:
            scripted = self._failures.get(method)
            if scripted:
                return scripted.pop(0)
            for outage in self._outages:
                if outage.covers(method, now):
                    return outage.kind, 1
        return None

    def _answer(self, call: Call) -> Answer:
        method, args, headers = call.method, call.args, call.headers
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or args.get("token", "")
        fault = self._fault(method)
        if fault is not None:
            kind, value = fault
            if kind == "429":
                return 429, {"Retry-After": str(value)}, {"ok": False, "error": "ratelimited"}
            if kind == "error":
                return 200, {}, {"ok": False, "error": value}
            return int(kind), {}, ERROR_PAGES[int(kind)]
        if token != (APP_TOKEN if method == "apps.connections.open" else self.token):
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        for required in REQUIRED.get(method, []):
            if not args.get(required):
                return 200, {}, {"ok": False, "error": ERROR_FOR_MISSING.get(required, "invalid_arguments")}
        problem = self._validate(method, args)
        if problem:
            self.invalid_payloads.append(f"{method}: {problem}")
            return 200, {}, {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, {"ok": True, **handler(args)}

    def _validate(self, method: str, args: dict[str, Any]) -> str | None:
        try:
            if method in MESSAGE_METHODS:
                blocks = _json_arg(args.get("blocks"))
                if not blocks and not args.get("text"):
                    return "no_text"
                validate_message(text=args.get("text", ""), blocks=blocks)
            elif method in VIEW_METHODS:
                validate_view(_json_arg(args.get("view")))
        except BlockKitError as err:
            return str(err)
        return None

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://fake.slack.com/", "team": "Fake", "user": "migrate-bot", "user_id": "UBOT"}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """A WebSocket URL that refuses the upgrade: the client keeps retrying, as when Slack is away."""
        return {"url": f"ws{self.base_url.removeprefix('http')}/socket-mode"}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        return {"channel": args["channel"], "ts": ts, "message": {"text": args.get("text"), "ts": ts}}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": args["channel"], "ts": args["ts"], "text": args.get("text")}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"message_ts": self._next_ts()}

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": args["channel"], "permalink": f"https://fake.slack.com/archives/{args['channel']}"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": {"id": f"V{next(self._ts):08d}", **_json_arg(args["view"])}}

    _views_push = _views_open

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"view": _json_arg(args["view"])}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args["usergroup"]
        if group not in self.group_members:
            raise _SlackError("no_such_subteam")
        return {"users": self.group_members[group]}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"user": {"id": args["user"], "name": args["user"].lower()}}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": {"id": args["channel"], "name": "migrations"}}

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not str(args["length"]).isdigit() or int(args["length"]) < 1:
            raise _SlackError("invalid_arguments")
        file_id = f"F{next(self._ts):08d}"
        with self._changed:
            self._upload_urls[file_id] = str(args["filename"])
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, raw: bytes) -> tuple[int, str]:
        """The bytes POSTed to an upload URL: Slack answers ``OK - <length>`` in plain text."""
        with self._changed:
            if file_id not in self._upload_urls:
                return 404, "Not Found"
            self.uploads[file_id] = raw
        return 200, f"OK - {len(raw)}"

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        """Shares the uploaded files; in a thread only with its channel, as Slack requires."""
        files = _json_arg(args["files"])
        if args.get("thread_ts") and not args.get("channel_id"):
            raise _SlackError("invalid_arguments")
        with self._changed:
            if any(f["id"] not in self.uploads for f in files):
                raise _SlackError("file_not_found")
            for f in files:
                shared = SharedFile(
                    f["id"],
                    self._upload_urls[f["id"]],
                    f.get("title"),
                    self.uploads[f["id"]],
                    args.get("channel_id"),
                    args.get("thread_ts"),
                    args.get("initial_comment"),
                )
                self.files.append(shared)
            self._changed.notify_all()
        return {"files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, headers: dict[str, str], body: dict[str, Any] | str) -> None:
                if isinstance(body, str):
                    kind = "html" if body.startswith("<") else "plain"
                    data, content_type = body.encode(), f"text/{kind}; charset=utf-8"
                else:
                    data, content_type = json.dumps(body).encode(), "application/json; charset=utf-8"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path.startswith("/upload/"):
                    status, said = fake._upload(self.path.removeprefix("/upload/"), raw)
                    self._send(status, {}, said)
                    return
                body = _decode(raw, headers.get("content-type", ""))
                if self.path.startswith("/response/"):
                    with fake._changed:
                        fake.responses.append((self.path.removeprefix("/response/"), body))
                        fake._changed.notify_all()
                    self._send(200, {}, {"ok": True})
                    return
                call = fake._receive(self.path.removeprefix("/api/"), body, headers)
                if fake._hold(call):
                    self.close_connection = True  # released: hang up without a word
                    return
                try:
                    status, extra, answer = fake._answer(call)
                except _SlackError as err:
                    status, extra, answer = 200, {}, {"ok": False, "error": err.code}
                fake._answered(call, status, answer)
                self._send(status, extra, answer)

        return Handler


class _SlackError(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _fault_kind(kind: str) -> str:
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
    return kind


def _describe(call: Call, offset: float) -> str:
    answer = "held" if call.status is None else f"{call.status} ok={call.ok}"
    if call.answer and call.answer.get("error"):
        answer += f" {call.answer['error']}"
    where = f" thread={call.args['thread_ts']}" if call.args.get("thread_ts") else ""
    where += f" ts={call.args['ts']}" if call.args.get("ts") else ""
    text = str(call.args.get("text") or "").replace("\n", " ")[:70]
    return f"+{offset:6.2f}s {call.method} [{answer}]{where} {text}"


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        return json.loads(raw)
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def _json_arg(value: Any) -> Any:
    """Form bodies carry blocks and views as JSON strings; JSON bodies carry them as they are."""
    return json.loads(value) if isinstance(value, str) else value
