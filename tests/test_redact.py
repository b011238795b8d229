import logging

from bot.redact import RedactingFilter, redact


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


def test_logging_filter_redacts_args_and_exceptions(caplog) -> None:
    logger = logging.getLogger("redact-test")
    logger.addFilter(RedactingFilter(("topsecret",)))
    with caplog.at_level(logging.INFO, logger="redact-test"):
        logger.info("dsn %s", "postgresql://u:pw@h/db")
        try:
            raise RuntimeError("auth failed for topsecret")
        except RuntimeError:
            logger.exception("boom")
    text = caplog.text
    assert "pw@" not in text and "topsecret" not in text
    assert "u:***@h" in text
