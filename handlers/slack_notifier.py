"""The Notifier port over the Slack Web API, for the outbox's deliverer.

Every payload is masked (``bot.redact``) and checked against Block Kit limits before it is sent, and
every failure is sorted for the deliverer: a rate limit or an outage is tried again, a refusal is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.markup import quote
from bot.notifier import Attachment, Choice, DeliveryDeferred, DeliveryFailed, MessageRef, Part, PlanView
from bot.redact import redact, redact_value
from bot.report import title
from bot.roles import GroupMembers
from handlers.blockkit import BlockKitError, validate_message
from handlers.blocks import checklist_text, choice_blocks, code_block, plan_blocks, plan_fallback_text

ROLLBACK_TITLES = {
    "file": "Rollback SQL (found beside the migration)",
    "generated": "Rollback SQL (generated)",
}
# ok:false errors that say "not now" rather than "never".
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# A request to Slack that takes longer than this is abandoned and tried again later.
TIMEOUT_SECONDS = 10


def make_client(token: str, base_url: str | None = None, *, retries: bool = True) -> WebClient:
    """A WebClient; with ``retries`` it waits out 429s (Retry-After) and retries dropped connections.

    The deliverer's client has none: it reschedules a message instead of sleeping on it.
    """
    kwargs: dict[str, Any] = {"token": token, "timeout": TIMEOUT_SECONDS}
    if base_url:
        kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    client = WebClient(**kwargs)
    if retries:
        client.retry_handlers.extend(
            [RateLimitErrorRetryHandler(max_retry_count=3), ConnectionErrorRetryHandler()]
        )
    return client


def slack_group_members(client: WebClient) -> GroupMembers:
    """Members of a Slack user group (``usergroups.users.list``), for the role directory."""

    def group_members(group: str) -> list[str]:
        return list(client.usergroups_users_list(usergroup=group)["users"])

    return group_members


def _classified(err: Exception) -> Exception:
    """The deliverer's view of a failed call: deferred (try again) or failed (for good)."""
    if isinstance(err, BlockKitError):
        return DeliveryFailed(f"invalid_blocks ({err})")
    if not isinstance(err, SlackApiError):  # timeouts, refused connections, DNS: Slack unreachable
        return DeliveryDeferred(f"cannot reach Slack ({type(err).__name__})")
    response = err.response
    status = getattr(response, "status_code", 200)
    code = response.get("error") if isinstance(response.data, dict) else None
    if status == 429:
        retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        return DeliveryDeferred("ratelimited", float(retry_after) if retry_after else None)
    if status >= 500:
        return DeliveryDeferred(f"Slack answered HTTP {status}")
    if code in TRANSIENT_ERRORS:
        return DeliveryDeferred(code)
    return DeliveryFailed(code or f"HTTP {status}")


class SlackNotifier:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            payload = {k: v for k, v in kwargs.items() if v is not None}
            return self.client.api_call(method, json=redact_value(payload))
        except Exception as err:
            raise _classified(err) from err

    def _post(self, *, channel: str, text: str, blocks: list[dict[str, Any]] | None = None, **kw: Any) -> Any:
        try:
            validate_message(text=text, blocks=blocks)
        except BlockKitError as err:
            raise _classified(err) from err
        return self._call("chat.postMessage", channel=channel, text=text, blocks=blocks, **kw)

    def post_plan(self, view: PlanView, *, channel: str) -> MessageRef:
        resp = self._post(channel=channel, text=plan_fallback_text(view), blocks=plan_blocks(view))
        return MessageRef(channel=resp["channel"], ts=resp["ts"])

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        text, blocks = plan_fallback_text(view), plan_blocks(view)
        try:
            validate_message(text=text, blocks=blocks)
        except BlockKitError as err:
            raise _classified(err) from err
        self._call("chat.update", channel=ref.channel, ts=ref.ts, text=text, blocks=blocks)

    def post_part(self, view: PlanView, ref: MessageRef, part: Part) -> None:
        if part is Part.CHECKLIST:
            self._post(channel=ref.channel, thread_ts=ref.ts, text=checklist_text(view))
            return
        stem = view.migration.path.name.removesuffix(".sql")
        if part is Part.MIGRATION:
            heading, filename, sql = "Migration SQL", f"{stem}.sql", view.migration.sql
        else:
            heading, sql = ROLLBACK_TITLES[view.rollback_source], view.rollback_sql
            filename = f"{stem}.rollback.sql"
        text = code_block(heading, sql)
        if text is not None:
            self._post(channel=ref.channel, thread_ts=ref.ts, text=text)
            return
        try:
            self.client.files_upload_v2(
                channel=ref.channel,
                thread_ts=ref.ts,
                content=redact(sql),
                filename=filename,
                title=heading,
                initial_comment=f"{heading}: too long for a message, attached as a file",
            )
        except Exception as err:
            raise _classified(err) from err

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._post(channel=ref.channel, thread_ts=ref.ts, text=text)

    def post_line(self, ref: MessageRef, text: str) -> MessageRef:
        resp = self._post(channel=ref.channel, thread_ts=ref.ts, text=text)
        return MessageRef(channel=resp["channel"], ts=resp["ts"])

    def update_line(self, line: MessageRef, text: str) -> None:
        try:
            validate_message(text=text, blocks=None)
        except BlockKitError as err:
            raise _classified(err) from err
        self._call("chat.update", channel=line.channel, ts=line.ts, text=text)

    def post_choices(
        self, *, channel: str, text: str, choices: Sequence[tuple[Choice, str]], thread: MessageRef | None
    ) -> MessageRef:
        resp = self._post(
            channel=channel,
            text=text,
            blocks=choice_blocks(text, choices),
            thread_ts=thread.ts if thread else None,
        )
        return MessageRef(channel=resp["channel"], ts=resp["ts"])

    def post_link(self, view: PlanView, ref: MessageRef, *, channel: str) -> None:
        link = self.permalink(ref)
        where = f"<{link}|in <#{ref.channel}>>" if link else f"in <#{ref.channel}>"
        self._post(channel=channel, text=f"📋 {quote(title(view))} is posted {where}")

    def post_ephemeral(self, *, channel: str, user: str, text: str) -> None:
        try:
            validate_message(text=text, blocks=None)
        except BlockKitError as err:
            raise _classified(err) from err
        self._call("chat.postEphemeral", channel=channel, user=user, text=text)

    def post_message(self, *, channel: str, text: str) -> None:
        self._post(channel=channel, text=text)

    def upload_file(self, ref: MessageRef, files: Sequence[Attachment], *, text: str) -> None:
        """files_upload_v2: an upload URL per file, the bytes posted to it, then one completion that
        shares them all in the thread (``channel_id`` and ``thread_ts``) under ``text``."""
        uploads = [{"filename": f.name, "content": f.content, "title": redact(f.title)} for f in files]
        try:
            self.client.files_upload_v2(
                file_uploads=uploads, channel=ref.channel, thread_ts=ref.ts, initial_comment=redact(text)
            )
        except Exception as err:
            raise _classified(err) from err

    def permalink(self, ref: MessageRef) -> str | None:
        try:
            resp = self.client.chat_getPermalink(channel=ref.channel, message_ts=ref.ts)
        except Exception:  # a link is a courtesy: the message says where the plan is without one
            return None
        return resp.get("permalink")
