"""Keep secrets out of Slack, logs and exports: DSN passwords, Slack tokens, signing secrets."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # postgresql://user:secret@host  ->  postgresql://user:***@host
    (re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^@\s/]+)(?P<tail>@)", re.I), "***"),
    # password=secret in key/value DSNs and PGPASSWORD=secret
    (
        re.compile(
            r"(?P<head>\b(?:password|pgpassword)\s*=\s*)(?P<secret>'[^']*'|\"[^\"]*\"|[^\s'\"]+)", re.I
        ),
        "***",
    ),
    # Slack tokens: bot, user, app-level, config, refresh
    (re.compile(r"(?P<head>\bx(?:ox[abeprs]|app|oxe\.xox[bp])-)(?P<secret>[A-Za-z0-9-]+)"), "***"),
]


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every recognisable secret, and each of ``extra_secrets``, replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(
            lambda m, r=replacement: f"{m.group('head')}{r}{m.groupdict().get('tail') or ''}", text
        )
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's formatted message before any handler sees it."""

    def __init__(self, extra_secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_secrets = extra_secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.extra_secrets)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            cleaned_exc = redact(str(exc), self.extra_secrets)
            if cleaned_exc != str(exc):
                record.exc_info = None
                record.exc_text = None
                cleaned += f" [{type(exc).__name__}: {cleaned_exc}]"
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
