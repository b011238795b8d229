"""What redact masks and what it keeps; the logging filter and redact_value follow it."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import redact as redact_module
from bot.config import parse_config
from bot.logs import RedactingFilter
from bot.redact import redact, redact_stream, redact_value, remember
from bot.secrets import known_secrets

ENCODED_RESPONSE_URL = "https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F2%2Fabc"


def test_redacts_dsn_passwords_and_tokens() -> None:
    text = (
        "connect postgresql://admin:s3cr%40t@db.internal:5432/prod failed; "
        "host=db password='hunter 2' user=x; PGPASSWORD=abc123 token xoxb-1234-abcd app xapp-1-A1-99"
    )
    out = redact(text)
    for secret in ("s3cr%40t", "hunter 2", "abc123", "1234-abcd", "1-A1-99"):
        assert secret not in out
    assert "postgresql://admin:***@db.internal:5432/prod" in out
    assert "xoxb-***" in out


def test_extra_secrets_and_passwordless_dsn_untouched() -> None:
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("signing abcdef123", ("abcdef123",)) == "signing ***"


SQL_PASSWORDS = [
    ("CREATE ROLE app LOGIN PASSWORD 's3cret';", "CREATE ROLE app LOGIN PASSWORD '***';"),
    (
        "CREATE USER x WITH ENCRYPTED PASSWORD 'md5abc0123' VALID UNTIL '2030-01-01';",
        "CREATE USER x WITH ENCRYPTED PASSWORD '***' VALID UNTIL '2030-01-01';",
    ),
    ("ALTER USER x PASSWORD 'x';", "ALTER USER x PASSWORD '***';"),
    ("ALTER ROLE x WITH PASSWORD E'it''s\\'q' LOGIN;", "ALTER ROLE x WITH PASSWORD '***' LOGIN;"),
    ("ALTER ROLE x PASSWORD 'it''s' LOGIN;", "ALTER ROLE x PASSWORD '***' LOGIN;"),
    ("ALTER ROLE x PASSWORD U&'d\\0061t';", "ALTER ROLE x PASSWORD '***';"),
    ("ALTER ROLE x PASSWORD $pw$se'cr$et$pw$ LOGIN;", "ALTER ROLE x PASSWORD '***' LOGIN;"),
    ("ALTER ROLE x PASSWORD $$secret$$;", "ALTER ROLE x PASSWORD '***';"),
    ("alter role x password 'low';", "alter role x password '***';"),
    ("ALTER ROLE x PASSWORD\n    'multi' LOGIN;", "ALTER ROLE x PASSWORD\n    '***' LOGIN;"),
    ("ALTER ROLE x PASSWORD -- why\n /* c */ 'x';", "ALTER ROLE x PASSWORD -- why\n /* c */ '***';"),
    ("ALTER ROLE x PASSWORD'tight';", "ALTER ROLE x PASSWORD'***';"),
    ("L3: create role x password 'truncat…", "L3: create role x password '***'"),
]
DSN_PASSWORDS = [
    (
        "-- connect with postgresql://admin:hunter2@db/prod\nSELECT 1;",
        "-- connect with postgresql://admin:***@db/prod\nSELECT 1;",
    ),
    ("postgres://a:b3@c:5432/d", "postgres://a:***@c:5432/d"),
    (
        "postgresql+psycopg://u:p%40ss@h/db?sslmode=require",
        "postgresql+psycopg://u:***@h/db?sslmode=require",
    ),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
    ("dbname=app password=x1 host=h", "dbname=app password=*** host=h"),
    ("DB_PASSWORD='q w' PGPASSWORD=abc make", "DB_PASSWORD=*** PGPASSWORD=*** make"),
]
RESPONSE_URLS = [
    ("reply to https://hooks.slack.com/commands/T1/22/abc.", "reply to https://hooks.slack.com/***."),
    ("<https://hooks.slack.com/actions/T1/22/abc|here>", "<https://hooks.slack.com/***|here>"),
    ("https://hooks.slack.com/app/T1/22/abc now", "https://hooks.slack.com/*** now"),
    ("https://hooks.slack.com/services/T1/B2/abc now", "https://hooks.slack.com/*** now"),
    ("https://hooks.slack-gov.com/commands/T1/22/abc", "https://hooks.slack-gov.com/***"),
    (
        '{"u": "https:\\/\\/hooks.slack.com\\/actions\\/T1\\/22\\/abc"}',
        '{"u": "https:\\/\\/hooks.slack.com\\/***"}',
    ),
    (f"response_url={ENCODED_RESPONSE_URL}&x=1", "response_url=https%3A%2F%2Fhooks.slack.com%2F***&x=1"),
    (
        "%22https%3A%5C%2F%5C%2Fhooks.slack.com%5C%2Factions%5C%2FT1%22",
        "%22https%3A%5C%2F%5C%2Fhooks.slack.com%5C%2F***%22",
    ),
]
# SQL without a password literal, and Slack URLs that carry no secret (a fake Slack's, the Web API's)
UNTOUCHED = [
    "ALTER ROLE x PASSWORD NULL;",
    "PREPARE p AS ALTER ROLE x PASSWORD $1;",
    "-- reset the password",
    "http://127.0.0.1:8123/api/chat.postMessage",
    "https://slack.com/api/chat.postMessage",
    "hooks.slack.com/",
]


@pytest.mark.parametrize(("text", "expected"), SQL_PASSWORDS + DSN_PASSWORDS + RESPONSE_URLS)
def test_secrets_are_masked_and_the_text_around_them_kept(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_text_without_secrets_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_unicode_around_secrets_survives() -> None:
    text = "İstanbul: ALTER ROLE ü PASSWORD 'sécret'; -- ç \udcff postgresql://ü:pässwörd@h/db"
    assert redact(text) == "İstanbul: ALTER ROLE ü PASSWORD '***'; -- ç \udcff postgresql://ü:***@h/db"


def test_a_large_migration_with_hostile_fragments_is_redacted_whole() -> None:
    """Correctness only: patterns that backtrack or rescan would make this take minutes, not fail."""
    statement = (
        "CREATE ROLE r{0} LOGIN PASSWORD 'pw{0}''x';\n"
        "-- see postgresql://admin:dsn{0}@db/prod and https://hooks.slack.com/commands/T1/2/hook{0}\n"
        "CREATE INDEX CONCURRENTLY i{0} ON nchat.nchat_messages (created_at DESC);\n"
    )
    hostile = "a." * 20_000 + "password /*" * 2_000 + "password --" * 2_000 + "x://a:" * 2_000 + "\n"
    count = 2_000
    sql = "".join(statement.format(i) for i in range(count)) + hostile + "ALTER ROLE last PASSWORD $$end$$;"
    out = redact(sql)
    assert "pw1" not in out and "dsn1" not in out and "hook1" not in out and "end$$" not in out
    assert out.count("PASSWORD '***';") == count + 1
    assert out.count("CREATE INDEX CONCURRENTLY") == count
    assert hostile in out


@pytest.mark.parametrize(("text", "expected"), SQL_PASSWORDS + DSN_PASSWORDS + RESPONSE_URLS)
def test_a_secret_cut_between_pieces_is_masked_as_in_one_text(text: str, expected: str) -> None:
    for cut in range(len(text) + 1):
        for pieces in ([text[:cut], text[cut:]], ["x ", text[:cut], " ", text[cut:], " y"]):
            assert "".join(redact_stream(pieces)) == redact("".join(pieces))
        assert "".join(redact_stream([text[:cut], text[cut:]])) == expected


def test_a_secret_known_by_value_cut_between_pieces_is_masked_as_in_one_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Remembered values (one inside another, one with a space) hold no pattern: masked across any cut."""
    monkeypatch.setattr(redact_module, "_REMEMBERED", ("db pass 42", "s3cr3t", "pass"))
    text = "run: psql -W db pass 42; again s3cr3ts3cr3t and pass word, password 'x y' done"
    for cut in range(len(text) + 1):
        for other in range(cut, len(text) + 1, 7):
            pieces = [text[:cut], text[cut:other], text[other:]]
            assert "".join(redact_stream(pieces)) == redact(text)
    assert redact(text) == "run: psql -W ***; again ****** and *** word, ***word '***' done"


def test_a_long_text_is_redacted_in_parts_its_secrets_masked_wherever_the_pieces_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parts as small as its pieces, also past a password_hash column; from a PASSWORD a rule matches, the
    rest is redacted whole."""
    monkeypatch.setattr(redact_module, "_REMEMBERED", ())  # parts as the rules cut them, no value's stage
    line = "ALTER TABLE app.users ADD COLUMN password_hash text; -- from postgresql://admin:hunter2@db/prod\n"
    text = line * 200 + "ALTER ROLE r PASSWORD 'se cret';" + line * 20
    pieces = [text[start : start + 1000] for start in range(0, len(text), 1000)]
    parts = list(redact_stream(pieces))
    assert "".join(parts) == redact(text)
    assert "hunter2" not in "".join(parts) and "se cret" not in "".join(parts)
    assert max(map(len, parts[:-1])) <= 1000 < len(parts[-1])


def test_redact_value_redacts_every_nested_string_and_keeps_the_rest() -> None:
    value = {
        "sql": "ALTER ROLE x PASSWORD 'p1';",
        "postgresql://u:key@h": 1,
        "steps": [{"url": "https://hooks.slack.com/actions/T1/2/abc"}, ("dsn", "postgresql://u:p2@h/db")],
        "n": 3,
        "ok": True,
        "none": None,
    }
    out = redact_value(value)
    assert out == {
        "sql": "ALTER ROLE x PASSWORD '***';",
        "postgresql://u:key@h": 1,
        "steps": [{"url": "https://hooks.slack.com/***"}, ("dsn", "postgresql://u:***@h/db")],
        "n": 3,
        "ok": True,
        "none": None,
    }
    assert value["sql"] == "ALTER ROLE x PASSWORD 'p1';"  # a new structure: the caller's is untouched


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> Iterator[logging.Logger]:
    log = logging.getLogger("redact-test")
    redacting = RedactingFilter(("topsecret",))
    log.addFilter(redacting)
    with caplog.at_level(logging.DEBUG, logger="redact-test"):
        yield log
    log.removeFilter(redacting)


def test_logging_filter_redacts_args_and_exceptions(logger: logging.Logger, caplog) -> None:
    logger.info("dsn %s", "postgresql://u:pw@h/db")
    try:
        raise RuntimeError("auth failed for topsecret")
    except RuntimeError:
        logger.exception("boom")
    text = caplog.text
    assert "pw@" not in text and "topsecret" not in text
    assert "u:***@h" in text
    assert "RuntimeError: auth failed for ***" in text and "Traceback" in text


def test_logging_filter_redacts_chained_exceptions_and_preformatted_tracebacks(logger, caplog) -> None:
    try:
        try:
            raise ValueError("ALTER ROLE x PASSWORD 'inner1'")
        except ValueError as err:
            raise RuntimeError("retry failed") from err
    except RuntimeError:
        logger.exception("migration failed")
    record = logging.LogRecord("redact-test", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_text = "Traceback ...\nError: https://hooks.slack.com/commands/T1/2/abc"
    logger.handle(record)
    text = caplog.text
    assert "inner1" not in text and "/commands/" not in text
    assert "PASSWORD '***'" in text and "RuntimeError: retry failed" in text and "hooks.slack.com/***" in text


def test_logging_filter_handles_dict_and_non_string_args(logger, caplog) -> None:
    logger.info("target %(dsn)s has %(n)d rows", {"dsn": "postgresql://u:pw1@h/db", "n": 20000})
    logger.info("%d statements, %r", 3, ["ALTER ROLE x PASSWORD 'pw2'"])
    assert caplog.messages == [
        "target postgresql://u:***@h/db has 20000 rows",
        "3 statements, [\"ALTER ROLE x PASSWORD '***'\"]",
    ]


def test_logging_filter_never_raises(logger, caplog) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no")

        __repr__ = __str__

    logger.info("%d rows", "postgresql://u:pw3@h/db")  # a bad format string
    logger.info("%s", Unprintable())
    assert "pw3" not in caplog.text
    assert caplog.messages == [
        "%d rows (arguments: ('postgresql://u:***@h/db',))",
        "log record dropped: it could not be redacted",
    ]


def test_bolt_debug_request_body_has_its_response_url_and_token_masked(logger, caplog) -> None:
    body = (
        "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T1&channel_id=C1&user_id=U1&command=%2Fmigrate"
        f"&text=plan+054.sql&response_url={ENCODED_RESPONSE_URL}&trigger_id=13345224609.738474920.8088930838d"
    )
    logger.debug("Received the following request body: %s", body)
    text = caplog.text
    assert "%2Fcommands%2FT1" not in text and "gIkuvaNzQIHg97ATvDxqgjtO" not in text
    assert "response_url=https%3A%2F%2Fhooks.slack.com%2F***&trigger_id=13345224609" in text
    assert "token=***&team_id=T1&channel_id=C1&user_id=U1&command=%2Fmigrate&text=plan+054.sql" in text


def test_the_secrets_the_config_points_at_are_masked_by_value_everywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target's password, a git token, a PagerDuty key: none matches a pattern, each is known by value
    once the services are built, in Slack payloads, stored events and logs alike."""
    monkeypatch.setattr("bot.redact._REMEMBERED", ())  # this test's values forgotten after it
    environ = {
        "PROD_DSN": "host=db.internal user=app password=Plain-0ld-w0rd dbname=chat",
        "GIT_TOKEN": "ghp_abc123token",
        "PD_KEY": "R0UTING-KEY-9",
    }
    env = {
        "dsn_env": "PROD_DSN",
        "git": {"url": "https://git.example.com/app.git", "token_env": "GIT_TOKEN"},
        "monitor": {"pagerduty_routing_key_env": "PD_KEY"},
    }
    config = parse_config({"environments": {"production": env}, "roles": {}}, tmp_path)
    said = "runbook printed Plain-0ld-w0rd; git said ghp_abc123token; pager R0UTING-KEY-9"
    assert redact(said) == said  # no pattern knows them
    remember(known_secrets(config, environ))
    assert redact(said) == "runbook printed ***; git said ***; pager ***"
    assert redact_value({"blocks": [{"text": said}]}) == {"blocks": [{"text": redact(said)}]}
    logger = logging.getLogger("test.remembered")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.remembered"):
        logger.info("step output: %s", said)
    assert "Plain-0ld-w0rd" not in caplog.text and "step output: runbook printed ***" in caplog.text
