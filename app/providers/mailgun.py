"""Mailgun provider: posts our serialized MIME bytes to /v3/<domain>/messages.mime via the SDK.

The SDK (mailgun 1.10.0) retries 429/5xx and network errors three times by default, which for a
POST could deliver a message twice; we pass RetryPolicy(max_retries=0) so each attempt is exactly
one HTTP request, and leave retrying to the outbox.
"""

from __future__ import annotations

import email.utils
import math
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from mailgun import ApiError, Client, MailgunTimeoutError
from mailgun.config import RetryPolicy

from app.providers.base import (
    Accepted,
    OutgoingMessage,
    Permanent,
    Result,
    Transient,
    clamp_retry_after,
)

REGION_URLS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
DEFAULT_RETRY_AFTER = 60.0
_MAX_TEXT = 300
# What the SDK raises: ApiError (MailgunTimeoutError is one) wraps requests' exceptions; its
# SecurityGuard raises ValueError/TypeError for settings it rejects (bad URL, domain, timeout).
_SEND_ERRORS = (ApiError, requests.RequestException, OSError, ValueError, TypeError)


@dataclass(frozen=True)
class MailgunSettings:
    """Which account, domain and region; base_url overrides the region (tests only)."""

    api_key: str
    domain: str
    region: str = "us"  # us | eu
    base_url: str | None = None
    connect_timeout: float = 5
    read_timeout: float = 30

    def __post_init__(self) -> None:
        """Fail at configuration time rather than on the first send."""
        if self.base_url is None and self.region not in REGION_URLS:
            raise ValueError(f"Unknown Mailgun region {self.region!r} (expected 'us' or 'eu')")
        for timeout in (self.connect_timeout, self.read_timeout):
            if not 0 < timeout <= 300:  # the SDK refuses anything else, but only when sending
                raise ValueError(f"Mailgun timeouts must be in (0, 300] seconds, not {timeout}")

    @property
    def api_url(self) -> str:
        """The API base URL the SDK talks to."""
        return (self.base_url or REGION_URLS[self.region]).rstrip("/")


def _body_text(resp: Any) -> str:
    """Mailgun's own explanation: the JSON "message" if any, else the (short) body text."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        text = str(data["message"])
    else:
        text = (getattr(resp, "text", "") or "").strip()
    text = " ".join(text.split())
    return text[:_MAX_TEXT] or "(no text)"


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), else a safe default."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        if when is None or when.tzinfo is None:
            return DEFAULT_RETRY_AFTER
        seconds = when.timestamp() - time.time()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return DEFAULT_RETRY_AFTER
    return seconds


def _maybe_accepted(exc: BaseException) -> bool:
    """The request went out but no answer came back (read timeout, reset after sending): Mailgun
    may have accepted it. A failed connect is safe to try elsewhere."""
    chain = list(_cause_chain(exc))
    if any(isinstance(e, requests.ConnectTimeout | ConnectionRefusedError) for e in chain):
        return False
    if any(isinstance(e, requests.ConnectionError) for e in chain) and not any(
        isinstance(e, requests.ReadTimeout) for e in chain
    ):
        text = " ".join(str(e) for e in chain).lower()
        return "reset" in text or "aborted" in text or "remote end closed" in text
    return isinstance(exc, MailgunTimeoutError) or any(
        isinstance(e, requests.ReadTimeout) for e in chain
    )


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from, to find the real network error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class MailgunProvider:
    """Sends pre-serialized MIME through Mailgun's HTTP API, one request per message attempt."""

    name = "mailgun"

    def __init__(
        self, settings: MailgunSettings, tag_for: Callable[[int], str | None] | None = None
    ) -> None:
        self.settings = settings
        self.tag_for = tag_for
        self._live: Client | None = None  # kept across batches, like an SMTP connection

    def close(self) -> None:
        """Drop the kept HTTP client (quietly)."""
        if self._live is not None:
            try:
                self._live.close()
            except Exception:  # noqa: BLE001
                pass
            self._live = None

    def _client(self) -> Client:
        """An SDK client with no retries and our (connect, read) timeout."""
        s = self.settings
        return Client(
            auth=("api", s.api_key),
            api_url=s.api_url,
            retry_policy=RetryPolicy(max_retries=0),
            timeout=(float(s.connect_timeout), float(s.read_timeout)),
        )

    def _scrub(self, text: str) -> str:
        """Make sure no reason or message we hand out can leak the API key."""
        key = self.settings.api_key
        return text.replace(key, "***") if key else text

    def _form(self, msg: OutgoingMessage) -> dict[str, str]:
        """The messages.mime form fields: recipient, our id, tag, and no Mailgun tracking."""
        data = {
            "to": msg.rcpt,
            "v:herald-id": str(msg.ref),
            "o:tracking": "no",  # Herald tracks opens and clicks itself
            "o:tracking-opens": "no",
            "o:tracking-clicks": "no",
        }
        tag = self.tag_for(msg.ref) if self.tag_for else msg.tag
        if tag:
            data["o:tag"] = tag
        return data

    def _send_one(self, client: Client, msg: OutgoingMessage) -> Result:
        """POST one message and map Mailgun's answer to a result."""
        resp = client.mimemessage.create(
            data=self._form(msg),
            files={"message": ("message.mime", msg.raw, "message/rfc822")},
            domain=self.settings.domain,
        )
        return self._classify(msg, resp)

    def _classify(self, msg: OutgoingMessage, resp: Any) -> Result:
        """Map an HTTP answer: 2xx sent, 400/413 refused for good, 429 later, the rest trouble."""
        code = int(resp.status_code)
        ref, domain = msg.ref, self.settings.domain
        if 200 <= code < 300:
            try:
                data = resp.json()
            except ValueError:
                data = {}
            data = data if isinstance(data, dict) else {}
            provider_id = str(data.get("id") or "").strip().strip("<>") or msg.message_id
            return Accepted(ref, provider_id=provider_id, response=str(data.get("message") or code))
        text = self._scrub(_body_text(resp))
        if code == 400:
            return Permanent(ref, f"Mailgun refused the message (400): {text}")
        if code == 413:
            return Permanent(ref, f"Message too large for Mailgun (413): {text}")
        if code == 429:
            return Transient(
                ref,
                f"Mailgun rate limit reached (429): {text}",
                retry_after=clamp_retry_after(_retry_after(resp.headers.get("Retry-After"))),
            )
        if code in (502, 504):  # a gateway gave up: Mailgun may have queued it anyway
            return Transient(
                ref,
                f"Mailgun's gateway failed ({code}); the message may have been accepted",
                provider_trouble=True,
                unconfirmed=True,
            )
        if code in (401, 403):
            reason = f"Mailgun refused the API key ({code}): {text}"
        elif code == 404:
            reason = (
                f"Mailgun has no domain '{domain}' at {self.settings.api_url} (404): {text}"
                " - check the domain name and the region (US/EU)"
            )
        elif code >= 500:
            reason = f"Mailgun failed ({code}): {text}"
        else:  # 402 (account), 3xx, other 4xx: not this message's fault, and not understood
            reason = f"Unexpected answer from Mailgun ({code}): {text}"
        return Transient(ref, self._scrub(reason), provider_trouble=True)

    def _trouble(self, exc: BaseException, *, sending: bool = True) -> str:
        """A readable reason for a request that got no HTTP answer, naming the host."""
        url = self.settings.api_url
        chain = list(_cause_chain(exc))
        if any(isinstance(e, requests.ConnectTimeout) for e in chain):
            return self._scrub(f"Could not reach {url}: connection timed out")
        if isinstance(exc, MailgunTimeoutError) or any(
            isinstance(e, requests.Timeout) for e in chain
        ):
            maybe = " (the message may have been accepted)" if sending else ""
            return self._scrub(
                f"{url} did not answer within {self.settings.read_timeout:g}s{maybe}"
            )
        if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in str(exc):
            return self._scrub(f"Could not reach {url}: connection refused")
        if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolution" in str(exc):
            return self._scrub(
                f"Could not reach {url}: its name could not be looked up (DNS). Check the "
                "region, or this server's network."
            )
        if any(isinstance(e, requests.ConnectionError) for e in chain):
            return self._scrub(f"Could not reach {url}: {str(chain[-1])[:_MAX_TEXT]}")
        detail = f"{exc.__class__.__name__}: {exc}"[:_MAX_TEXT]
        return self._scrub(f"Mailgun request to {url} failed: {detail}")

    def send(self, msg: OutgoingMessage) -> Result:
        """One POST on this sender's HTTP session; every failure becomes a result."""
        try:
            if self._live is None:
                self._live = self._client()
            result = self._send_one(self._live, msg)
        except _SEND_ERRORS as exc:
            self.close()
            return Transient(
                msg.ref,
                self._trouble(exc),
                provider_trouble=True,
                unconfirmed=_maybe_accepted(exc),
            )
        if isinstance(result, Transient) and result.provider_trouble:
            self.close()
        return result

    def check(self) -> str | None:
        """Verify key and domain with one cheap GET: None when fine, else why not. Never raises."""
        s = self.settings
        try:
            with self._client() as client:
                resp = client.domains.get(domain=s.domain)
                code = int(resp.status_code)
                text = _body_text(resp)
        except Exception as exc:  # noqa: BLE001 - a "test connection" button must not crash
            try:
                return self._trouble(exc, sending=False)
            except Exception:  # noqa: BLE001
                return f"Could not reach {s.api_url}."
        if 200 <= code < 300:
            return None
        if code in (401, 403):
            return self._scrub(
                f"The API key was refused ({code})."
                " A domain sending key cannot be checked this way; use an account API key."
            )
        if code == 404:
            return self._scrub(
                f"Mailgun has no domain '{s.domain}'."
                f" Check the name and the region ({s.api_url} was asked)."
            )
        return self._scrub(f"Mailgun answered {code}: {text}")
