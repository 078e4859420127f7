"""Secrets stay secret: log lines redact addresses in tracebacks, the dev mailbox cannot be on in
production, and rotating keys re-encrypts stored secrets."""

from __future__ import annotations

import logging

import pytest

from app.config import Config
from app.extensions import db


def test_tracebacks_are_redacted_in_log_output(app):
    from app.logs import RedactingFormatter

    logger = logging.getLogger("app.test")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("cannot deliver to jane.doe@example.com")
        except ValueError:
            logger.exception("send failed")
    finally:
        logger.removeHandler(handler)
    line = RedactingFormatter().format(records[0])
    assert "jane.doe@example.com" not in line and "<email>" in line


def test_dev_mailbox_cannot_be_switched_on_in_production(monkeypatch):
    monkeypatch.setenv("DEVMAIL_ENABLED", "true")
    with pytest.raises(RuntimeError, match="DEVMAIL_ENABLED"):
        Config(HERALD_ENV="production", SECRET_KEY="x")


def test_rotate_keys_reencrypts_secrets_with_the_new_key(app, ctx, factories, monkeypatch):
    from cryptography.fernet import Fernet

    from app.crypto import decrypt, rotate

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", old)
    org = factories.make_org()
    account = factories.make_provider_account(org, secret="smtp-password")
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", f"{new},{old}")
    assert rotate()["provider secrets"] == 1
    db.session.commit()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", new)  # the old key is gone
    db.session.expire_all()
    assert decrypt(account.secret_encrypted) == "smtp-password"
    result = app.test_cli_runner().invoke(args=["herald", "rotate-keys"])
    assert result.exit_code == 0 and "1 provider secrets" in result.output
