"""The bot's logs: every record redacted before any handler sees it.

Apart from ``bot.redact`` so that what only redacts text (``migrate-bot plan`` in a CI pipeline) does not
load the logging package.
"""

from __future__ import annotations

import logging

from bot.redact import redact
from bot.settings import Settings


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Log to stderr with every record redacted, including the bot's own secrets verbatim."""
    secrets = tuple(
        s.get_secret_value()
        for s in (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token)
        if s is not None
    )
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


_TRACEBACKS = logging.Formatter()  # formats a record's traceback as the standard formatter would


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message, traceback and stack before any handler sees it.

    It never raises: an exception from a filter escapes the caller's logging call.
    """

    def __init__(self, extra_secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_secrets = extra_secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception:
            record.msg, record.args = "log record dropped: it could not be redacted", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what was given instead of failing again in the handler
            message = f"{record.msg} (arguments: {record.args!r})"
            record.msg, record.args = message, None
        cleaned = redact(message, self.extra_secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        exc_text = record.exc_text or (record.exc_info and _TRACEBACKS.formatException(record.exc_info))
        if exc_text:
            cleaned_exc = redact(exc_text, self.extra_secrets)
            if cleaned_exc != exc_text:
                # formatters print exc_text as it is; exc_info would let one format the secret again
                record.exc_info, record.exc_text = None, cleaned_exc
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.extra_secrets)
