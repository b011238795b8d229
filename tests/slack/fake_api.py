"""A fake Slack Web API on 127.0.0.1: records every call and answers the way Slack does.

It speaks HTTP on a real socket (port 0, so tests run in parallel), accepts form and JSON bodies,
checks the bearer token, validates every Block Kit payload against Slack's limits, and can be told to
answer the next call of a method with ``ok: false`` or HTTP 429 with ``Retry-After``. It also serves
``response_url``s and the upload URL of the two-step file upload.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from handlers.blockkit import BlockKitError, validate_message, validate_view

TOKEN = "xoxb-test-token-0000"
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


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.uploads: dict[str, bytes] = {}
        self.invalid_payloads: list[str] = []
        self.group_members: dict[str, list[str]] = {}
        self._failures: dict[str, list[tuple[str, Any]]] = {}
        self._ts = itertools.count(1)
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
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
        self._failures.setdefault(method, []).append(("error", error))

    def rate_limit_next(self, method: str, retry_after: int = 1) -> None:
        """The next call of ``method`` answers HTTP 429 with ``Retry-After``."""
        self._failures.setdefault(method, []).append(("429", retry_after))

    # --- inspection ---------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.method == method]

    def last(self, method: str) -> Call:
        calls = self.calls_to(method)
        assert calls, f"no call to {method}; calls: {[c.method for c in self.calls]}"
        return calls[-1]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until ``method`` was called ``count`` times (lazy listeners run after the ack)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{method} called {len(self.calls_to(method))} time(s), wanted {count}; "
                        f"calls: {[c.method for c in self.calls]}"
                    )
                self._changed.wait(left)
            return [c for c in self.calls if c.method == method]

    def wait_for_response(
        self, name: str = "default", count: int = 1, timeout: float = 10
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len([r for n, r in self.responses if n == name]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} response(s) to {name} wanted; got {self.responses}")
                self._changed.wait(left)
            return [r for n, r in self.responses if n == name]

    # --- answering ----------------------------------------------------------------------------
    def _answer(self, method: str, args: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, dict]:
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or args.get("token", "")
        with self._changed:
            self.calls.append(Call(method, args, headers))
            self._changed.notify_all()
        scripted = self._failures.get(method)
        if scripted:
            kind, value = scripted.pop(0)
            if kind == "429":
                return 429, {"Retry-After": str(value)}, {"ok": False, "error": "ratelimited"}
            return 200, {}, {"ok": False, "error": value}
        if token != self.token:
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
        file_id = f"F{next(self._ts):08d}"
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = _json_arg(args["files"])
        missing = [f["id"] for f in files if f["id"] not in self.uploads]
        if missing:
            raise _SlackError("file_not_found")
        return {"files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path.startswith("/upload/"):
                    fake.uploads[self.path.removeprefix("/upload/")] = raw
                    self._send(200, {}, {"ok": True})
                    return
                body = _decode(raw, headers.get("content-type", ""))
                if self.path.startswith("/response/"):
                    with fake._changed:
                        fake.responses.append((self.path.removeprefix("/response/"), body))
                        fake._changed.notify_all()
                    self._send(200, {}, {"ok": True})
                    return
                method = self.path.removeprefix("/api/")
                try:
                    status, extra, answer = fake._answer(method, body, headers)
                except _SlackError as err:
                    status, extra, answer = 200, {}, {"ok": False, "error": err.code}
                self._send(status, extra, answer)

        return Handler


class _SlackError(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        return json.loads(raw)
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def _json_arg(value: Any) -> Any:
    """Form bodies carry blocks and views as JSON strings; JSON bodies carry them as they are."""
    return json.loads(value) if isinstance(value, str) else value
