"""DKIM keys, DNS records and fast signing: dkimpy builds the signature, OpenSSL does the RSA.

dkimpy's canonicalization and DKIM-Signature construction are kept as they are, but its RSA
step is pure Python (~10 ms per message). `_FastDKIM` runs dkimpy's own `DKIM.sign` and
`DomainSigner.gen_header` code against a private copy of the `dkim` module namespace in which
the two key primitives are ours: the "private key parser" hands back an already-loaded
`cryptography` key, and the RSASSA-PKCS1-v1_5 step signs the finished digest with it. The real
`dkim` module is never modified, so other dkimpy users in the process are unaffected.
"""

from __future__ import annotations

import base64
import functools
import time
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import dkim
import dns.exception
import dns.resolver
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from app.crypto import decrypt
from app.models import Organization

MIN_KEY_BITS = 1024
DNS_LIFETIME_SECONDS = 5.0

# Headers signed when present, in h= order. Every instance present is signed; From is signed
# once more than present so that a second From cannot be added without breaking the signature.
SIGNED_HEADERS = tuple(
    b"from to subject date message-id list-unsubscribe list-unsubscribe-post reply-to cc "
    b"list-id feedback-id mime-version content-type".split()
)
OVERSIGNED_HEADERS = (b"from",)


class DKIMError(Exception):
    """A message could not be DKIM-signed."""


class DKIMKeyError(DKIMError):
    """The private key text is unusable for DKIM; the message is shown to the admin."""


# ---- keys and records -------------------------------------------------------------------------


def generate_key(bits: int = 2048) -> str:
    """A fresh RSA key as PKCS#8 PEM, so each sending domain gets its own DKIM key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_key(private_pem: str) -> rsa.RSAPrivateKey:
    """Parse pasted key text, refusing anything we cannot sign with, with a message an admin
    can act on."""
    text = (private_pem or "").strip()
    if "-----BEGIN" not in text:
        raise DKIMKeyError(
            "That is not a PEM private key. Paste the whole key, including the "
            "-----BEGIN PRIVATE KEY----- and -----END PRIVATE KEY----- lines."
        )
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except TypeError as exc:
        raise DKIMKeyError(
            "The key is protected by a passphrase. Export it without one and paste it again."
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DKIMKeyError(
            "The key could not be read. Paste an unencrypted RSA private key in PEM format "
            "(PKCS#8 or PKCS#1)."
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DKIMKeyError(
            "That is not an RSA key. DKIM signing here needs an RSA private key (2048 bits)."
        )
    if key.key_size < MIN_KEY_BITS:
        raise DKIMKeyError(
            f"The key is only {key.key_size} bits; receivers reject DKIM keys under "
            f"{MIN_KEY_BITS} bits. Use a 2048-bit key."
        )
    return key


def _public_b64(key: rsa.RSAPrivateKey) -> str:
    """The p= value for a key: base64 of its DER SubjectPublicKeyInfo, as RFC 6376 wants."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def public_record(private_pem: str) -> str:
    """The TXT value the admin publishes so receivers can verify our signatures."""
    return f"v=DKIM1; k=rsa; p={_public_b64(load_key(private_pem))}"


def record_name(selector: str, domain: str) -> str:
    """Where receivers look up the key for a selector, so the admin knows where to publish."""
    return f"{selector}._domainkey.{domain}"


# ---- signing ----------------------------------------------------------------------------------

_PKCS1V15 = padding.PKCS1v15()
_PREHASHED = {"sha256": utils.Prehashed(hashes.SHA256())}


def _key_as_is(key: rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    """Stands in for dkimpy's PEM parser: the key was loaded once, in Signer.__init__."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise dkim.KeyFormatError("expected a loaded cryptography RSA key")
    return key


def _rsa_sign(digest: Any, key: rsa.RSAPrivateKey) -> bytes:
    """Stands in for dkimpy's pure-Python RSASSA-PKCS1-v1_5: OpenSSL signs the finished hash."""
    return key.sign(digest.digest(), _PKCS1V15, _PREHASHED[digest.name.lower()])


def _with_globals(func: Callable[..., Any], **replacements: Any) -> Callable[..., Any]:
    """dkimpy's own function, resolving the named globals to ours instead of the dkim module's,
    so the swap stays local to our subclass; fails at import if dkimpy stops using a name."""
    missing = sorted(set(replacements) - set(func.__code__.co_names))
    if missing:
        raise ImportError(
            f"{func.__qualname__} no longer uses {missing}; app/mail/dkim.py needs updating "
            "for this dkimpy version"
        )
    namespace = {**func.__globals__, **replacements}
    clone = types.FunctionType(
        func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__
    )
    clone.__kwdefaults__ = func.__kwdefaults__
    clone.__qualname__ = func.__qualname__
    clone.__doc__ = func.__doc__
    return clone


class _FastDKIM(dkim.DKIM):
    """dkim.DKIM whose sign() takes a loaded cryptography key and signs with OpenSSL."""

    sign = _with_globals(dkim.DKIM.sign, parse_pem_private_key=_key_as_is)
    gen_header = _with_globals(dkim.DomainSigner.gen_header, RSASSA_PKCS1_v1_5_sign=_rsa_sign)


def _headers_to_sign(headers: list[list[bytes]]) -> list[bytes]:
    """The h= list for one message: each listed header as many times as it is present."""
    present = Counter(name.lower() for name, _value in headers)
    include = [name for name in SIGNED_HEADERS for _ in range(present[name])]
    return include + [name for name in OVERSIGNED_HEADERS if name in present]


class Signer:
    """Signs many messages for one (domain, selector, key); the key is parsed only once."""

    def __init__(self, domain: str, selector: str, private_pem: str) -> None:
        """Load and validate the key up front so a bad key fails here, not per message."""
        self.domain = domain.strip().lower().rstrip(".")
        self.selector = selector.strip()
        self._key = load_key(private_pem)
        self._domain = self.domain.encode("idna")
        self._selector = self.selector.encode("ascii")

    def sign(self, raw: bytes) -> bytes:
        """The message with a relaxed/relaxed rsa-sha256 DKIM-Signature header prepended."""
        try:
            message = _FastDKIM(raw, linesep=b"\r\n")
            include = _headers_to_sign(message.headers)
            if b"from" not in include:
                raise DKIMError("Cannot DKIM-sign a message without a From header.")
            header = message.sign(
                self._selector,
                self._domain,
                self._key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=include,
            )
        except dkim.DKIMException as exc:
            raise DKIMError(f"DKIM signing failed: {exc}") from exc
        return header + raw


# ---- DNS check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DNSCheck:
    """Outcome of looking up the published key, shown to the admin as-is."""

    ok: bool
    message: str
    found: str | None


def _resolve_txt(name: str) -> list[str]:
    """TXT records at name via dnspython, each record's 255-byte strings joined into one."""
    answer = dns.resolver.resolve(name, "TXT", lifetime=DNS_LIFETIME_SECONDS)
    return [b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer]


def _group_records(strings: list[str]) -> list[str]:
    """Whole records from TXT strings: a string starting v=DKIM1 opens a record, any other
    string continues the previous one (long keys are published as several strings)."""
    records: list[str] = []
    for piece in strings:
        compact = "".join(piece.split())
        if not records or compact.lower().startswith("v=dkim1"):
            records.append(compact)
        else:
            records[-1] += compact
    return records


def _tags(record: str) -> dict[str, str]:
    """A DKIM key record's tag=value pairs (whitespace already removed)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.lower()] = value
    return tags


def check_dns(
    selector: str,
    domain: str,
    private_pem: str,
    resolve: Callable[[str], list[str]] | None = None,
) -> DNSCheck:
    """Whether DNS publishes our public key, so the admin knows if receivers can verify yet."""
    name = record_name(selector, domain)
    expected = _public_b64(load_key(private_pem))
    try:
        strings = (resolve or _resolve_txt)(name)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        strings = []
    except dns.exception.Timeout:
        return DNSCheck(False, f"The DNS lookup for {name} timed out. Try again in a minute.", None)
    except dns.exception.DNSException as exc:
        return DNSCheck(
            False, f"The DNS lookup for {name} failed ({exc}). Try again in a minute.", None
        )
    records = _group_records(strings)
    if not records:
        return DNSCheck(
            False, f"No TXT record at {name} yet. DNS changes can take up to 48 hours.", None
        )
    keys = [record for record in records if "p" in _tags(record)]
    for record in keys:
        if _tags(record)["p"] == expected:
            return DNSCheck(True, f"The record at {name} matches this key.", record)
    if keys:
        return DNSCheck(
            False,
            f"The record at {name} has a different public key. Publish the value shown here.",
            keys[0],
        )
    return DNSCheck(
        False,
        f"The TXT record at {name} is not a DKIM key record. Publish the value shown here.",
        records[0],
    )


# ---- benchmark --------------------------------------------------------------------------------


def _sample_message() -> bytes:
    """A realistic ~4 KB invitation: multipart/alternative with list headers, CRLF line ends."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Acme Recruiting <jobs@acme.example>"
    msg["To"] = "Ada Lovelace <ada@example.org>"
    msg["Subject"] = "Interview invitation: Senior Backend Engineer at Acme"
    msg["Date"] = "Tue, 04 Jun 2024 09:30:00 +0000"
    msg["Message-ID"] = "<4f1c2d9a0b7e4c1e9d2f6a3b5c7e8f90@acme.example>"
    msg["Reply-To"] = "hiring@acme.example"
    msg["List-Unsubscribe"] = "<https://herald.example/u/4f1c2d9a0b7e4c1e>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    paragraph = (
        "Thank you for applying for the Senior Backend Engineer role. We would like to invite "
        "you to a 45-minute video interview with the platform team. Pick a slot that suits you "
        "using the link below; you can reschedule up to 24 hours before the interview.\n\n"
    )
    msg.set_content("Hi Ada,\n\n" + paragraph * 5 + "Best regards,\nAcme Recruiting\n")
    html = "".join(f"<p>{paragraph.strip()}</p>\n" for _ in range(6))
    msg.add_alternative(f"<html><body><p>Hi Ada,</p>\n{html}</body></html>\n", subtype="html")
    return msg.as_bytes()


def bench_sign(n: int = 500) -> float:
    """Milliseconds per signature on a ~4 KB message, to catch a regression to slow RSA."""
    signer = Signer("acme.example", "herald", generate_key())
    raw = _sample_message()
    signer.sign(raw)
    started = time.perf_counter()
    for _ in range(n):
        signer.sign(raw)
    return (time.perf_counter() - started) * 1000 / n


@functools.lru_cache(maxsize=256)
def _signer(domain: str, selector: str, key_encrypted: str) -> Signer | None:
    key = decrypt(key_encrypted)
    return Signer(domain, selector, key) if key else None


def signer_for(org: Organization) -> Signer | None:
    """The org's signer, built once per key and reused for every message."""
    if not org.sending_domain or not org.dkim_selector:
        return None
    return _signer(org.sending_domain, org.dkim_selector, org.dkim_key_encrypted)
