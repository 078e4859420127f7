"""The provider interface: one ready-made message in, one result out.

Providers know no tables and no request. `send(message) -> Result` is the whole sending interface;
`check()` backs the "Test connection" button and `close()` drops a connection. Whatever protocol a
provider speaks stays inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """One serialized message and its envelope."""

    ref: int  # our message id (the outbox row)
    raw: bytes
    mail_from: str
    rcpt: str
    message_id: str
    idempotency_key: str
    tag: str | None = None  # e.g. the campaign, for providers that report by tag
    org_id: int | None = None  # whose DKIM key signs it (providers that send raw SMTP)


@dataclass(frozen=True)
class Accepted:
    """The provider took the message."""

    ref: int
    provider_id: str
    response: str


@dataclass(frozen=True)
class Transient:
    """Not sent now; worth trying again. provider_trouble means the provider itself is failing.
    unconfirmed means the message may have been accepted (the answer never came): it must not be
    sent again automatically, through this provider or another."""

    ref: int
    reason: str
    retry_after: float | None = None
    provider_trouble: bool = False
    unconfirmed: bool = False


MAX_RETRY_AFTER = 3600.0


def clamp_retry_after(seconds: float | None) -> float:
    """A provider's Retry-After, kept within [1 s, 1 h] (a bogus value must not stop sending)."""
    if seconds is None or seconds != seconds:  # None or NaN
        return 60.0
    return min(MAX_RETRY_AFTER, max(1.0, seconds))


@dataclass(frozen=True)
class Permanent:
    """The provider refused this message for good (bad address, policy)."""

    ref: int
    reason: str


Result = Accepted | Transient | Permanent


class Provider(Protocol):
    """What every provider implements. One provider object serves one sender (thread) at a
    time: it keeps that sender's connection."""

    name: str

    def send(self, message: OutgoingMessage) -> Result:
        """Send one message and say what the provider answered (never raises for its trouble)."""
        ...

    def check(self) -> str | None:
        """Connect (and log in): None when that worked, else what went wrong."""
        ...

    def close(self) -> None:
        """Drop the connection quietly."""
        ...
