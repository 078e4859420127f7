"""VERP addresses: bounces+<message id>-<tag>@domain, where the tag is an HMAC of the id, so a
forged DSN cannot name someone else's message (and through it suppress an address)."""

from __future__ import annotations

import hashlib
import hmac
import re


def verp_key() -> bytes:
    """The key of VERP tags, derived from SECRET_KEY."""
    from flask import current_app

    return hashlib.sha256(b"herald-verp:" + current_app.config["SECRET_KEY"].encode()).digest()


_LOCAL = re.compile(r"^bounces\+(\d{1,18})-([0-9a-f]{12})$")


def tag(key: bytes, message_id: int) -> str:
    return hmac.digest(key, f"verp:{message_id}".encode(), "sha256").hex()[:12]


def local_part(key: bytes, message_id: int) -> str:
    return f"bounces+{message_id}-{tag(key, message_id)}"


def message_id_of(key: bytes, local: str) -> int | None:
    """The message id a bounce address names, if its tag is ours."""
    found = _LOCAL.match(local.lower())
    if not found:
        return None
    message_id = int(found.group(1))
    return message_id if hmac.compare_digest(tag(key, message_id), found.group(2)) else None
