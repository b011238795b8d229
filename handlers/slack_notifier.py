"""The Notifier port over the Slack Web API; every payload is checked against Block Kit limits first."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.notifier import MessageRef, PlanView
from handlers.blockkit import validate_message
from handlers.blocks import checklist_text, code_block, escape, mention, plan_blocks, plan_fallback_text

ROLLBACK_TITLES = {
    "file": "Rollback SQL (found beside the migration)",
    "generated": "Rollback SQL (generated)",
}


def make_client(token: str, base_url: str | None = None) -> WebClient:
    """A WebClient that waits out 429s (Retry-After) and retries dropped connections."""
    kwargs: dict[str, Any] = {"token": token}
    if base_url:
        kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    client = WebClient(**kwargs)
    client.retry_handlers.extend(
        [RateLimitErrorRetryHandler(max_retry_count=3), ConnectionErrorRetryHandler()]
    )
    return client


class SlackNotifier:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _post(
        self, *, channel: str, text: str, blocks: list[dict[str, Any]] | None = None, **kw: Any
    ) -> MessageRef:
        validate_message(text=text, blocks=blocks)
        resp = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, **kw)
        return MessageRef(channel=resp["channel"], ts=resp["ts"])

    def post_plan(self, view: PlanView, *, channel: str | None) -> MessageRef | None:
        if channel is None:
            return None
        return self._post(channel=channel, text=plan_fallback_text(view), blocks=plan_blocks(view))

    def _post_sql(self, ref: MessageRef, heading: str, filename: str, sql: str) -> None:
        text = code_block(heading, sql)
        if text is not None:
            self._post(channel=ref.channel, thread_ts=ref.ts, text=text)
            return
        self.client.files_upload_v2(
            channel=ref.channel,
            thread_ts=ref.ts,
            content=sql,
            filename=filename,
            title=heading,
            initial_comment=f"{heading}: too long for a message, attached as a file",
        )

    def post_plan_details(self, view: PlanView, ref: MessageRef) -> None:
        draft = view.draft
        self._post_sql(ref, "Migration SQL", draft.migration.path.name, draft.migration.sql)
        rollback_name = draft.migration.path.name.removesuffix(".sql") + ".rollback.sql"
        self._post_sql(ref, ROLLBACK_TITLES[draft.rollback.source], rollback_name, draft.rollback.sql)
        self._post(channel=ref.channel, thread_ts=ref.ts, text=checklist_text(view))

    def post_in_thread(self, ref: MessageRef, text: str) -> None:
        self._post(channel=ref.channel, thread_ts=ref.ts, text=text)

    def update_plan(self, view: PlanView, ref: MessageRef) -> None:
        text, blocks = plan_fallback_text(view), plan_blocks(view)
        validate_message(text=text, blocks=blocks)
        self.client.chat_update(channel=ref.channel, ts=ref.ts, text=text, blocks=blocks)

    def mention(self, user_id: str) -> str:
        return mention(user_id)

    def quote(self, text: str) -> str:
        return escape(text)
