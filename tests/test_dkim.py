"""DKIM keys, records, signing (verified by dkimpy) and the DNS check; no database needed."""

from __future__ import annotations

import re

import dkim
import dkim.crypto
import dns.exception
import dns.resolver
import pytest
from dkim.util import parse_tag_value

from app.mail import dkim as herald_dkim
from app.mail.dkim import (
    DKIMKeyError,
    Signer,
    check_dns,
    generate_key,
    load_key,
    public_record,
    record_name,
)

DOMAIN = "acme.example"
SELECTOR = "herald"

# A throwaway 512-bit key (cryptography refuses to generate one, but will load it).
KEY_512 = """-----BEGIN PRIVATE KEY-----
MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEArCN9UCOvBUqvnCTS
gpjWN50hb0VThNsl1moX/hG40LeCS/GOnKMst9VKKYU3HxID1xUZ/NYzT6fnZWA1
3nI9mwIDAQABAkBzQogj4uDMIEgZuyYhQAkfz9yVTswvhzV8rilGe8NOLJfygEU5
GGJW29dBjlCiuezHE64hdu5Ogn3anEUGvNlhAiEA4heJlFEWxo8+15qM6q0RUtea
YCs6roqUaBXEpR4nsbkCIQDC6NtZXeploFHyLsvDFm6Cn/cejPXizX7cZpeculpj
8wIhAKIdXnkK69nUPKs8Fm7vScys6/SpCpq8o00+zpHW3X+BAiEAjHa/zXGvQLn/
FGfBFMEPtzeNIgk4EtFBgZi13o82IR0CIQC3GECJLqR5OJIqH4HZiPiLr3cKQxcJ
zM1As4qzKjRokQ==
-----END PRIVATE KEY-----
"""


@pytest.fixture(scope="module")
def pem() -> str:
    """One 2048-bit key for the module; generating one per test is slow."""
    return generate_key()


@pytest.fixture(scope="module")
def raw() -> bytes:
    """A realistic multipart invitation with list headers, CRLF line ends."""
    return herald_dkim._sample_message()


def _dnsfunc(pem: str):
    """A dkimpy dnsfunc that serves our public record at the right name only."""
    expected = f"{record_name(SELECTOR, DOMAIN)}.".encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return public_record(pem).encode() if name == expected else None

    return lookup


def _signature_tags(signed: bytes) -> dict[bytes, bytes]:
    """The tags of the DKIM-Signature header at the top of a signed message."""
    head = signed.split(b"\r\n\r\n", 1)[0]
    match = re.match(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", head, re.DOTALL)
    assert match, head[:200]
    return parse_tag_value(re.sub(rb"\s+", b"", match.group(1)))


# ---- keys and records ------------------------------------------------------------------------


def test_generated_key_is_pkcs8_2048_and_record_has_its_public_key(pem):
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert load_key(pem).key_size == 2048
    record = public_record(pem)
    assert record.startswith("v=DKIM1; k=rsa; p=MIIB")
    assert " " not in record.split("p=", 1)[1]
    assert record_name("s1", "acme.example") == "s1._domainkey.acme.example"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("hello, this is my key", "not a PEM private key"),
        ("", "not a PEM private key"),
        ("-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n", "not be read"),
        (KEY_512, "only 512 bits"),
    ],
)
def test_unusable_keys_raise_a_clear_error(text, fragment):
    with pytest.raises(DKIMKeyError, match=fragment):
        load_key(text)
    with pytest.raises(DKIMKeyError):
        Signer(DOMAIN, SELECTOR, text)


def test_non_rsa_key_is_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(DKIMKeyError, match="not an RSA key"):
        load_key(ec_pem)


# ---- signing ---------------------------------------------------------------------------------


def test_signed_message_verifies_and_keeps_crlf(pem, raw):
    signed = Signer(DOMAIN, SELECTOR, pem).sign(raw)
    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(raw)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert dkim.verify(signed, dnsfunc=_dnsfunc(pem))


def test_signature_tags_and_signed_headers(pem, raw):
    tags = _signature_tags(Signer(DOMAIN, SELECTOR, pem).sign(raw))
    assert tags[b"a"] == b"rsa-sha256"
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"d"] == DOMAIN.encode()
    assert tags[b"s"] == SELECTOR.encode()
    signed_headers = tags[b"h"].split(b":")
    assert signed_headers[:7] == [
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    ]
    assert {b"reply-to", b"mime-version", b"content-type"} <= set(signed_headers)
    assert signed_headers.count(b"from") == 2  # oversigned: a second From breaks it


def test_absent_optional_headers_are_not_signed(pem):
    raw = (
        b"From: jobs@acme.example\r\nTo: ada@example.org\r\nSubject: Hi\r\n"
        b"Date: Tue, 04 Jun 2024 09:30:00 +0000\r\nMessage-ID: <1@acme.example>\r\n\r\nHello\r\n"
    )
    signed = Signer(DOMAIN, SELECTOR, pem).sign(raw)
    assert _signature_tags(signed)[b"h"] == b"from:to:subject:date:message-id:from"
    assert dkim.verify(signed, dnsfunc=_dnsfunc(pem))


@pytest.mark.parametrize(
    "old, new",
    [
        (b"Subject: Interview invitation", b"Subject: Interview cancelled"),
        (b"Thank you for applying", b"Thank you for applyinG"),
        (
            b"List-Unsubscribe: <https://herald.example/u/",
            b"List-Unsubscribe: <https://evil.example/u/",
        ),
    ],
)
def test_tampering_breaks_the_signature(pem, raw, old, new):
    signed = Signer(DOMAIN, SELECTOR, pem).sign(raw)
    assert old in signed
    assert not dkim.verify(signed.replace(old, new, 1), dnsfunc=_dnsfunc(pem))


def test_added_from_header_breaks_the_signature(pem, raw):
    signed = Signer(DOMAIN, SELECTOR, pem).sign(raw)
    header, _, rest = signed.partition(b"\r\nFrom: ")
    forged = header + b"\r\nFrom: ceo@acme.example\r\nFrom: " + rest
    assert not dkim.verify(forged, dnsfunc=_dnsfunc(pem))


def test_signer_is_reusable(pem, raw):
    signer = Signer(DOMAIN, SELECTOR, pem)
    other = raw.replace(b"ada@example.org", b"grace@example.org")
    for message in (raw, other, raw):
        assert dkim.verify(signer.sign(message), dnsfunc=_dnsfunc(pem))


def test_message_without_from_is_refused(pem):
    with pytest.raises(herald_dkim.DKIMError, match="without a From"):
        Signer(DOMAIN, SELECTOR, pem).sign(b"To: a@example.org\r\nSubject: x\r\n\r\nbody\r\n")


def test_rsa_is_done_by_cryptography_not_dkimpys_pure_python(pem, raw, monkeypatch):
    def pure_python(*args, **kwargs):
        raise AssertionError("dkimpy's pure-Python RSA path was used")

    # The key-parsing and RSA primitives the pure-Python signing path goes through.
    for target in (dkim.crypto, dkim):
        monkeypatch.setattr(target, "RSASSA_PKCS1_v1_5_sign", pure_python)
        monkeypatch.setattr(target, "parse_pem_private_key", pure_python)
    monkeypatch.setattr(dkim.crypto, "rsa_decrypt", pure_python)
    monkeypatch.setattr(dkim.crypto, "parse_private_key", pure_python)

    with pytest.raises(AssertionError, match="pure-Python"):  # the trap does catch plain dkimpy
        dkim.sign(raw, SELECTOR.encode(), DOMAIN.encode(), pem.encode())
    signed = Signer(DOMAIN, SELECTOR, pem).sign(raw)
    assert dkim.verify(signed, dnsfunc=_dnsfunc(pem))


def test_dkim_module_itself_is_not_patched():
    assert dkim.RSASSA_PKCS1_v1_5_sign is dkim.crypto.RSASSA_PKCS1_v1_5_sign
    assert dkim.parse_pem_private_key is dkim.crypto.parse_pem_private_key
    assert dkim.DKIM.sign is not herald_dkim._FastDKIM.sign


# ---- DNS check -------------------------------------------------------------------------------


def _stub(*strings: str):
    """A resolver stub returning these TXT strings."""
    return lambda name: list(strings)


def _raising(exc: Exception):
    """A resolver stub that fails like dnspython does."""

    def resolve(name: str) -> list[str]:
        raise exc

    return resolve


def test_check_dns_matches_our_record(pem):
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=_stub(public_record(pem)))
    assert result.ok
    assert result.found


def test_check_dns_joins_a_record_split_into_strings(pem):
    record = public_record(pem)
    chunks = [record[i : i + 255] for i in range(0, len(record), 255)]
    assert len(chunks) > 1
    chunks[1] = f"  {chunks[1]} "  # whitespace inside the value is ignored
    seen: list[str] = []

    def resolve(name: str) -> list[str]:
        seen.append(name)
        return chunks

    result = check_dns(SELECTOR, DOMAIN, pem, resolve=resolve)
    assert result.ok, result.message
    assert seen == ["herald._domainkey.acme.example"]


def test_check_dns_finds_ours_among_several_records(pem):
    other = public_record(generate_key(1024))
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=_stub(other, public_record(pem)))
    assert result.ok


def test_check_dns_reports_a_different_key(pem):
    other = public_record(generate_key(1024))
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=_stub(other))
    assert not result.ok
    assert result.message == (
        "The record at herald._domainkey.acme.example has a different public key. "
        "Publish the value shown here."
    )
    assert result.found == other.replace(" ", "")


@pytest.mark.parametrize(
    "resolve",
    [_raising(dns.resolver.NXDOMAIN()), _raising(dns.resolver.NoAnswer()), _stub()],
)
def test_check_dns_reports_a_missing_record(pem, resolve):
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=resolve)
    assert not result.ok
    assert result.found is None
    assert result.message == (
        "No TXT record at herald._domainkey.acme.example yet. DNS changes can take up to 48 hours."
    )


def test_check_dns_reports_a_timeout(pem):
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=_raising(dns.exception.Timeout()))
    assert not result.ok
    assert "timed out" in result.message
    assert "herald._domainkey.acme.example" in result.message


def test_check_dns_reports_other_resolver_failures(pem):
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=_raising(dns.resolver.NoNameservers()))
    assert not result.ok
    assert "DNS lookup for herald._domainkey.acme.example failed" in result.message


def test_check_dns_reports_a_txt_record_that_is_not_a_key(pem):
    result = check_dns(SELECTOR, DOMAIN, pem, resolve=_stub("google-site-verification=abc"))
    assert not result.ok
    assert "not a DKIM key record" in result.message


def test_default_resolver_uses_dnspython_with_a_short_lifetime(pem, monkeypatch):
    calls: list[tuple] = []

    class Rdata:
        strings = tuple(chunk.encode() for chunk in re.findall(".{1,255}", public_record(pem)))

    def fake_resolve(name, rdtype, lifetime=None):
        calls.append((name, rdtype, lifetime))
        return [Rdata()]

    monkeypatch.setattr(dns.resolver, "resolve", fake_resolve)
    assert check_dns(SELECTOR, DOMAIN, pem).ok
    assert calls == [("herald._domainkey.acme.example", "TXT", 5.0)]


def test_passphrase_protected_key_is_refused_and_pkcs1_accepted(pem):
    from cryptography.hazmat.primitives import serialization

    key = load_key(pem)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    with pytest.raises(DKIMKeyError, match="passphrase"):
        load_key(encrypted)
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert pkcs1.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert public_record(pkcs1) == public_record(pem)
