"""Message text as the bot writes it: Slack's mrkdwn conventions, made safe where people typed it.

Text owed to Slack is stored in the outbox in this form whatever front end caused it (a click, the
CLI's break-glass approval), so a mention made by the CLI still pings in Slack; the console turns it
back into plain text.
"""

from __future__ import annotations

import re

_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_GROUP_MENTION = re.compile(r"<!subteam\^([A-Z0-9]+)>")
_QUOTED_MENTION = re.compile(r"&lt;@([A-Z0-9]+)&gt;")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def mention(user_id: str) -> str:
    """A user, named so Slack notifies them."""
    return f"<@{user_id}>"


def mention_group(group_id: str) -> str:
    """A Slack user group, named so its members are notified (a page to a rota)."""
    return f"<!subteam^{group_id}>"


def quote(text: str) -> str:
    """Text a person or a file supplied, made inert: no mentions, links or markup it did not mean.

    Slack's docs ask for exactly these three characters to be escaped in mrkdwn.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote_message(text: str) -> str:
    """A message of the bot's that embeds what people typed (an error naming their file, say): all of it
    quoted, then the bot's own user mentions restored; a user mention pings one person, never a channel."""
    return _QUOTED_MENTION.sub(r"<@\1>", quote(text))


def plain(text: str) -> str:
    """The same text for a terminal: ``<@U123>`` as ``@U123``, ``*bold*`` as bold's words, entities as
    characters."""
    import html  # its entity table takes a millisecond to load, which `migrate-bot plan` need not

    mentions = _GROUP_MENTION.sub(r"@\1", _MENTION.sub(r"@\1", text))
    return html.unescape(_BOLD.sub(r"\1", mentions))
