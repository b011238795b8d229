"""Keep secrets out of Slack, logs and stored events: passwords, Slack tokens, response URLs, signing secrets.

``redact`` runs on every log record and on whole migration files, so it must stay linear and fast. The rules
match an ASCII-lower-cased UTF-8 copy of the text (same offsets, no IGNORECASE), which lets each start with
a literal that ``re`` finds at memchr speed, and none nests quantifiers that could match the same text two
ways or scans to the end of the text again for every candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

# A path separator as URLs carry it: plain, JSON-escaped (\/), percent-encoded (%2F) or both (%5C%2F).
_SEP = rb"(?:\\?/|(?:%5c)?%2f)"
# Whitespace and short comments; a comment may not run to the end of the text for each PASSWORD in it.
_SQL_GAP = rb"(?:\s|--[^\n]{0,100}+\n|/\*[^*]*+\*/)*"
# A string literal, its closing quote optional so a truncated statement still hides what follows:
# E'..' with backslash escapes, '..' and U&'..' with doubled quotes, and $tag$..$tag$ dollar quotes.
_SQL_LITERAL = (
    rb"e'(?:[^'\\]|\\[\s\S]|'')*'?"
    rb"|(?:u&)?'(?:[^']|'')*'?"
    rb"|\$(?P<tag>[a-z_][a-z0-9_]*|)\$[\s\S]*?(?:\$(?P=tag)\$|\Z)"
)

# Each rule's "secret" group is replaced by its mask; what is around it stays readable.
_RULES: list[tuple[re.Pattern[bytes], bytes]] = [
    # postgresql://user:secret@host, up to the last @ (a raw @ in a password)
    (re.compile(rb"://[^/\s:@]*:(?P<secret>[^\s/]+)@"), b"***"),
    # password=secret in key/value DSNs, query strings and the environment (PGPASSWORD, DB_PASSWORD)
    (re.compile(rb"password\s*=\s*(?P<secret>'(?:[^'\\]|\\.)*'?|\"[^\"]*\"?|[^\s'\"]+)"), b"***"),
    # CREATE/ALTER ROLE ... PASSWORD 'secret' (not PASSWORD NULL); the keyword and layout stay as written
    (re.compile(rb"password" + _SQL_GAP + rb"(?P<secret>" + _SQL_LITERAL + rb")"), b"'***'"),
    # token=, access_token=... in url-encoded bodies: Slack's legacy verification token (Bolt logs bodies)
    (re.compile(rb"token=(?P<secret>[^\s&'\"]+)"), b"***"),
    # Slack tokens: bot, user, app-level, config, refresh
    (re.compile(rb"x(?:ox[abeprs]|app|oxe\.xox[bp])-(?P<secret>[a-z0-9-]+)"), b"***"),
    # Response URLs and incoming webhooks are bearer secrets: everything after the host goes
    (re.compile(rb"hooks\.slack(?:-gov)?\.com" + _SEP + rb"(?P<secret>(?:[\w-]|" + _SEP + rb")+)"), b"***"),
]


# Secrets known by their value (bot.secrets: the targets' passwords, tokens the config names), masked by
# every redact() of this process from the moment they are remembered.
_REMEMBERED: tuple[str, ...] = ()


def remember(secrets: Iterable[str]) -> None:
    """Mask these values wherever this process redacts: Slack payloads, logs, stored events, exports."""
    global _REMEMBERED
    values = {*_REMEMBERED, *(s for s in secrets if len(s) >= 4)}
    _REMEMBERED = tuple(sorted(values, key=lambda s: (-len(s), s)))  # one inside another stays hidden


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every recognisable secret, each remembered one and each of ``extra_secrets``
    replaced by ``***``."""
    text = _masked(text)
    for secret in _by_value(extra_secrets):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _by_value(extra_secrets: tuple[str, ...]) -> list[str]:
    """The secrets masked by their value, in the order they are replaced."""
    return [secret for secret in (*extra_secrets, *_REMEMBERED) if len(secret) >= 4]


def _masked(text: str) -> str:
    """``text`` with what the rules recognise masked."""
    raw = text.encode("utf-8", "surrogatepass")
    folded = raw.lower()  # bytes.lower() folds ASCII only: every offset in it is an offset in raw
    spans = sorted(
        (m.start("secret"), m.end("secret"), mask) for rule, mask in _RULES for m in rule.finditer(folded)
    )
    if spans:
        parts: list[bytes] = []
        done = 0
        for start, end, mask in spans:
            if start >= done:  # a span inside one already masked adds nothing but its end
                parts += (raw[done:start], mask)
            done = max(done, end)
        parts.append(raw[done:])
        text = b"".join(parts).decode("utf-8", "surrogatepass")
    return text


# White space as the rules' \s reads it (bytes): no match holds any, but one that starts at PASSWORD.
_WHITE = " \t\n\r\f\v"
# What may follow PASSWORD where a rule matches: `\s*=` or a gap (white space, a comment) and a literal.
_PASSWORD_GOES_ON = frozenset((_WHITE + "=-/eu'$").encode())


def redact_stream(pieces: Iterable[str]) -> Iterator[str]:
    """``redact("".join(pieces))``, in parts, without holding the text whole (a 10 MB file's plan is 200 MB
    of JSON): the rules' masks part by part, then each secret known by its value replaced across them."""
    parts = _masked_stream(pieces)
    for secret in _by_value(()):
        parts = _replaced_stream(parts, secret)
    return parts


def _masked_stream(pieces: Iterable[str]) -> Iterator[str]:
    """``_masked("".join(pieces))`` in parts. A part ends before a space or newline, which no rule's match
    holds, and before the first PASSWORD a rule may match from (``password_hash`` is not one): from there
    the text is masked whole."""
    rest = iter(pieces)
    text = next(rest, "")
    for piece in rest:  # the last piece, or the only one, is masked as it is: no copy of it is cut
        end, whole = _open_password(text)
        cut = max(0, text.rfind(" ", 0, end), text.rfind("\n", 0, end))
        if cut:
            yield _masked(text[:cut])
        if whole:
            text = "".join([text[cut:], piece, *rest])
            break
        text = text[cut:] + piece
    yield _masked(text)


def _replaced_stream(parts: Iterator[str], secret: str) -> Iterator[str]:
    """``"".join(parts).replace(secret, "***")`` in parts: a part's end that may begin the secret waits for
    the next part (an occurrence that starts before it lies whole in this one)."""
    carry = ""
    for part in parts:
        text = carry + part
        done, out = 0, [""]
        while (found := text.find(secret, done)) >= 0:
            out += (text[done:found], "***")
            done = found + len(secret)
        waits = max(done, len(text) - len(secret) + 1)
        out.append(text[done:waits])
        yield "".join(out)
        carry = text[waits:]
    yield carry


def _open_password(text: str) -> tuple[int, bool]:
    """Where the first PASSWORD a rule may match from starts (else the text's end), and whether that is
    sure: PASSWORD at the very end may or may not go on in the next piece."""
    # folded as the rules read it, ASCII only, a byte per character so that offsets are the text's
    folded = text.encode("ascii", "replace").lower()
    found = folded.find(b"password")
    while found >= 0:
        if found + 8 == len(folded):
            return found, False
        if folded[found + 8] in _PASSWORD_GOES_ON:
            return found, True
        found = folded.find(b"password", found + 8)
    return len(text), False


def redact_value(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """A copy of ``value`` with every string in it redacted, however deeply nested in dicts, lists and tuples.

    Keys are kept as they are (they name fields, they are not data) and other values are left untouched.
    """
    if isinstance(value, str):
        return redact(value, extra_secrets)
    if isinstance(value, dict):
        return {key: redact_value(item, extra_secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [redact_value(item, extra_secrets) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value
