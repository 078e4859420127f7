"""The provider interface: a batch of ready-made messages in, one result per message out.

Providers know no tables and no request. They yield each result as soon as the provider answers,
so the caller can commit it at once and a crash repeats at most the message on the wire.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


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
    signer: Any = None  # DKIM signer (has .sign(bytes) -> bytes) for providers that send raw SMTP
    # Asked once, just before the message becomes final: True lets it go, False withdraws it
    # (the provider then delivers nothing and answers Withheld). A provider that can send a
    # message in two steps (SMTP: the body, then its end) asks between them, so that what
    # the caller waits for overlaps the transfer; the others are asked before sending.
    release: Callable[[], bool] | None = None


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


@dataclass(frozen=True)
class Withheld:
    """Not sent: the caller withdrew the message (its release said no) before it was final.
    Nothing was delivered; it says nothing of the provider."""

    ref: int


Result = Accepted | Transient | Permanent | Withheld


def ask(release: Callable[[], bool] | None) -> bool:
    """A message's release (see OutgoingMessage.release): True when there is none; an error in
    asking withdraws the message (it is the caller's error, not the provider's, and the caller
    sees it again)."""
    if release is None:
        return True
    try:
        return bool(release())
    except Exception:  # noqa: BLE001
        return False


def released(msg: OutgoingMessage) -> bool:
    """Ask the message's release, for providers that send in one step."""
    return ask(msg.release)


class Provider(Protocol):
    """What every provider implements."""

    name: str

    def send_batch(self, messages: Iterable[OutgoingMessage]) -> Iterator[Result]:
        """Send each message, yielding its result as soon as it is known."""
        ...


class ProviderCache:
    """Process-wide providers by settings, so connections are reused across batches; bounded
    (least recently used first out, its connection closed), as settings change over time."""

    def __init__(self, size: int = 64) -> None:
        from collections import OrderedDict

        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, settings: object, make: Callable[[], object]) -> object:
        evicted = []
        with self.lock:
            found = self.items.pop(settings, None)
            if found is None:
                found = make()
            self.items[settings] = found
            while len(self.items) > self.size:
                evicted.append(self.items.popitem(last=False)[1])
        for provider in evicted:  # outside the lock: an SMTP QUIT may take its timeout
            close = getattr(provider, "close", None)
            if close is not None:
                close()  # a route still holding it reconnects on its next send
        return found
