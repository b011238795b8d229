"""What the server or a command said, as it may be shown: secrets masked, and short enough for a message."""

from __future__ import annotations

from collections.abc import Sequence

from bot.redact import redact

# Slack shows about 3,000 characters of a section; a step's output is one part of its message.
OUTPUT_LIMIT = 3000


def shown(text: str, secrets: Sequence[str] = (), limit: int = OUTPUT_LIMIT) -> str:
    """``text`` redacted (with ``secrets`` masked too), its middle left out when it is longer than ``limit``.

    Both ends are kept: a command says what it is doing first and why it failed last.
    """
    text = redact(text.strip(), tuple(secrets))
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    return f"{text[:head]}\n… {len(text) - limit} characters left out …\n{text[-tail:]}"
