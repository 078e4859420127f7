"""Re-encrypting the secrets at rest with the newest key of ENCRYPTION_KEYS (the crypto module
stays below the models; this walks them)."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from sqlalchemy import select

from app.crypto import fernet
from app.extensions import db
from app.models import Invitation, Organization, ProviderAccount
from app.tenancy import ALL_ORGS


def rotate() -> dict[str, int]:
    """Re-encrypt provider secrets, DKIM keys and invitation tokens with the newest key (in the
    current transaction). A value no key opens is left as it is and counted."""
    f = fernet()
    counts = {"provider secrets": 0, "DKIM keys": 0, "invitation links": 0, "unreadable": 0}
    columns = (
        (ProviderAccount, "secret_encrypted", "provider secrets"),
        (Organization, "dkim_key_encrypted", "DKIM keys"),
        (Invitation, "token_encrypted", "invitation links"),
    )
    for model, column, label in columns:
        attr = getattr(model, column)
        query = select(model).where(attr.is_not(None)).execution_options(yield_per=1000, **ALL_ORGS)
        for row in db.session.scalars(query):
            try:
                setattr(row, column, f.rotate(getattr(row, column).encode()).decode())
                counts[label] += 1
            except (InvalidToken, ValueError):
                counts["unreadable"] += 1
    return counts
