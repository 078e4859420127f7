"""Mails the sink received, one .eml file each, with the envelope in a .json beside it."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

KEY = re.compile(r"^\d{20}-[0-9a-f]{32}$")


@dataclass
class StoredMail:
    """One received mail, parsed for display."""

    key: str
    received_at: datetime
    envelope_from: str
    envelope_to: list[str]
    subject: str
    sender: str
    to: str
    html: str | None = None
    text: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw_size: int = 0
    message_id: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class Attachment:
    """A part of a mail sent as a file (e.g. the invitation's invite.ics)."""

    filename: str
    content_type: str
    data: bytes


def save(directory: str, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> str:
    """Write a received mail atomically; returns its key."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    key = f"{now.strftime('%Y%m%d%H%M%S%f')}-{uuid.uuid4().hex}"
    meta = {"from": mail_from, "to": rcpt_tos, "received_at": now.isoformat()}
    for suffix, data in ((".json", json.dumps(meta).encode()), (".eml", raw)):
        tmp = folder / f".{key}{suffix}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / f"{key}{suffix}")
    return key


def _parse(folder: Path, key: str, full: bool) -> StoredMail:
    raw = (folder / f"{key}.eml").read_bytes()
    meta = json.loads((folder / f"{key}.json").read_text())
    msg: EmailMessage = message_from_bytes(raw, policy=policy.default)  # type: ignore[assignment]
    mail = StoredMail(
        key=key,
        received_at=datetime.fromisoformat(meta["received_at"]),
        envelope_from=meta["from"],
        envelope_to=meta["to"],
        subject=str(msg.get("Subject", "(no subject)")),
        sender=str(msg.get("From", "")),
        to=str(msg.get("To", "")),
        raw_size=len(raw),
        message_id=str(msg.get("Message-ID", "")).strip() or None,
    )
    if full:
        html, text = msg.get_body(("html",)), msg.get_body(("plain",))
        mail.html = html.get_content() if html is not None else None
        mail.text = text.get_content() if text is not None else None
        mail.headers = [(k, str(v)) for k, v in msg.items()]
        for n, part in enumerate(msg.iter_attachments(), 1):
            data = part.get_payload(decode=True) or b""
            name = part.get_filename() or f"attachment-{n}"
            mail.attachments.append(Attachment(name, part.get_content_type(), data))
    return mail


@dataclass
class MailPage:
    """One page of the mailbox, newest first, and the keys its Newer/Older links start from."""

    mails: list[StoredMail]
    newer: str | None = None  # ?after=: the page just newer than this one
    older: str | None = None  # ?before=: the page just older


def list_mails(
    directory: str,
    before: str | None = None,
    after: str | None = None,
    size: int = 50,
    keep: Callable[[list[StoredMail]], list[StoredMail]] | None = None,
) -> MailPage:
    """Newest first, a page of `size` mails older than `before` or newer than `after` (keys,
    which sort by arrival; a stale or odd one just lands on the nearest page). `keep` picks the
    mails the reader may see; headers are read a chunk at a time until a page is full."""
    folder = Path(directory)
    if not folder.is_dir():
        return MailPage([])
    keys = sorted((p.stem for p in folder.glob("*.eml") if KEY.match(p.stem)), reverse=True)
    if after:
        newer = _kept(folder, reversed([k for k in keys if k > after]), size + 1, keep)[::-1]
        if len(newer) > size:
            return MailPage(newer[-size:], newer=newer[-size].key, older=newer[-1].key)
        before = None  # fewer than a page newer: the newest page
    candidates = [k for k in keys if k < before] if before else keys
    shown = _kept(folder, candidates, size + 1, keep)
    if before and not shown:  # past the end (emptied meanwhile): the newest page
        return list_mails(directory, size=size, keep=keep)
    has_newer = bool(before) and bool(
        _kept(folder, reversed([k for k in keys if k >= before]), 1, keep)
    )
    return MailPage(
        shown[:size],
        newer=shown[0].key if has_newer and shown else None,
        older=shown[size - 1].key if len(shown) > size else None,
    )


def _kept(
    folder: Path,
    keys: Iterable[str],
    wanted: int,
    keep: Callable[[list[StoredMail]], list[StoredMail]] | None,
) -> list[StoredMail]:
    """The first `wanted` mails of `keys` that `keep` lets through, parsed 100 at a time."""
    found: list[StoredMail] = []
    chunk: list[str] = []
    for key in [*keys, None]:
        if key is not None:
            chunk.append(key)
        if chunk and (key is None or len(chunk) == 100):
            mails = [_parse(folder, k, full=False) for k in chunk]
            found.extend(keep(mails) if keep else mails)
            chunk = []
            if len(found) >= wanted:
                break
    return found[:wanted]


def get_mail(directory: str, key: str) -> StoredMail | None:
    """One mail by key, or None (also for anything that is not a valid key)."""
    folder = Path(directory)
    if not KEY.match(key) or not (folder / f"{key}.eml").is_file():
        return None
    return _parse(folder, key, full=True)


def clear(directory: str) -> int:
    """Delete every stored mail; returns how many."""
    folder = Path(directory)
    count = 0
    for path in folder.glob("*.eml") if folder.is_dir() else []:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        count += 1
    return count


def delete(directory: str, keys: list[str]) -> int:
    """Delete these stored mails; returns how many were there."""
    folder = Path(directory)
    count = 0
    for key in keys:
        path = folder / f"{key}.eml"
        if KEY.match(key) and path.is_file():
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            count += 1
    return count
