"""Org branding: logo upload (PNG, JPEG or sanitized SVG, ≤ 512 KB), colours, sender, footer."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nh3
from flask import current_app

from app.audit import audit
from app.auth.services import AccountError, normalize_email
from app.models import Organization, User

MAX_LOGO_BYTES = 512 * 1024
# How the email layout shows a logo (height 40px, max-width 220px): said by the help and the error.
LOGO_SHOWN = "Emails show it 40 px high and at most 220 px wide, so about 440 × 80 px is plenty."
COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
KEY = re.compile(r"^\d+-[0-9a-f]{20}\.(png|jpg|svg)$")
TYPES = {"png": "image/png", "jpg": "image/jpeg", "svg": "image/svg+xml"}
SVG_TAGS = {
    "svg",
    "g",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "defs",
    "linearGradient",
    "radialGradient",
    "stop",
    "title",
    "desc",
    "clipPath",
}
SVG_ATTRIBUTES = {
    "*": {
        "viewBox",
        "xmlns",
        "width",
        "height",
        "fill",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "d",
        "x",
        "y",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "x1",
        "y1",
        "x2",
        "y2",
        "points",
        "transform",
        "opacity",
        "fill-opacity",
        "fill-rule",
        "clip-rule",
        "clip-path",
        "font-family",
        "font-size",
        "font-weight",
        "text-anchor",
        "offset",
        "stop-color",
        "stop-opacity",
        "id",
        "class",
        "gradientUnits",
        "preserveAspectRatio",
    }
}


class BrandingError(Exception):
    """A branding value that cannot be used; the message says why."""


def upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "logos"


def _kind(data: bytes) -> str:
    """png, jpg or svg by content (not by the file name)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    head = data[:2048].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "svg"
    raise BrandingError("The logo must be a PNG, JPEG or SVG image.")


def sanitize_svg(data: bytes) -> bytes:
    """Only drawing elements and attributes: no script, event handler, link or foreign object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BrandingError("The SVG file is not valid UTF-8 text.") from exc
    clean = nh3.clean(
        text,
        tags=SVG_TAGS,
        attributes=SVG_ATTRIBUTES,
        clean_content_tags={"script", "style"},
        strip_comments=True,
    )
    if "<svg" not in clean:
        raise BrandingError("The SVG file has no drawing Herald can keep.")
    return clean.encode()


def store_logo(org: Organization, data: bytes) -> str:
    """Validate and store a logo; returns its key (content-addressed, so caches never go stale)."""
    if not data:
        raise BrandingError("The logo file is empty.")
    if len(data) > MAX_LOGO_BYTES:
        raise BrandingError(f"The logo is over 512 KB. Use a smaller image. {LOGO_SHOWN}")
    kind = _kind(data)
    if kind == "svg":
        data = sanitize_svg(data)
    key = f"{org.id}-{hashlib.sha256(data).hexdigest()[:20]}.{kind}"
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_bytes(data)
    return key


def logo_path(key: str) -> Path | None:
    """The stored file for a logo key, or None (also for anything that is not a key)."""
    if not KEY.match(key):
        return None
    path = upload_dir() / key
    return path if path.is_file() else None


def _email_or_none(value: str | None, label: str) -> str | None:
    if not value or not value.strip():
        return None
    try:
        return normalize_email(value)
    except AccountError as exc:
        raise BrandingError(f"{label}: {exc}") from exc


def problems(values: dict) -> dict[str, str]:
    """What is wrong with the form's values, per field (all of them at once); empty if fine."""
    found = {}
    for field in ("primary_color", "accent_color"):
        if not COLOR.fullmatch(values.get(field) or ""):
            found[field] = "Colours must look like #1A2B3C."
    for field, label in (("sender_email", "Sender address"), ("reply_to", "Reply-to address")):
        try:
            _email_or_none(values.get(field), label)
        except BrandingError as exc:
            found[field] = str(exc)
    return found


def update(
    org: Organization, actor: User, values: dict, logo: bytes | None, remove_logo: bool
) -> None:
    """Apply the branding form (the caller commits); BrandingError (the caller rolls back) when
    a value is unusable."""
    for field in ("primary_color", "accent_color"):
        if not COLOR.fullmatch(values.get(field) or ""):
            raise BrandingError("Colours must look like #1A2B3C.")
    sender = _email_or_none(values.get("sender_email"), "Sender address")
    reply_to = _email_or_none(values.get("reply_to"), "Reply-to address")
    key = store_logo(org, logo) if logo else None
    org.primary_color = values["primary_color"].upper()
    org.accent_color = values["accent_color"].upper()
    org.sender_name = (values.get("sender_name") or "").strip() or None
    org.sender_email, org.reply_to = sender, reply_to
    org.footer_text = (values.get("footer_text") or "").strip() or None
    lines = (" ".join(line.split()) for line in (values.get("postal_address") or "").splitlines())
    org.postal_address = "\n".join(line for line in lines if line) or None
    if key:
        org.logo_key = key
    elif remove_logo:
        org.logo_key = None
    audit(org.id, actor, "branding.changed", logo=bool(key), removed_logo=remove_logo)
