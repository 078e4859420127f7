"""Mails the sink received, one .eml file each, with the envelope in a .json beside it."""

from __future__ import annotations

import json
import os
import re
import uuid
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


def list_mails(directory: str, limit: int = 200) -> list[StoredMail]:
    """Newest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    keys = sorted((p.stem for p in folder.glob("*.eml") if KEY.match(p.stem)), reverse=True)
    return [_parse(folder, key, full=False) for key in keys[:limit]]


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
