"""Signed tracking links and rewriting a message's HTML at send time.

The pixel carries the message id; a click link carries the message id and the destination, so the
redirect can only go where the mail itself pointed (no open redirect). One itsdangerous salt per
purpose; the serializers are built once per secret.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
MAX_URL = 2000


class BadTrackingLink(Exception):
    """A pixel or click link that was cut, altered or signed by someone else."""


@functools.lru_cache(maxsize=8)
def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"herald:track:{purpose}")


def _s(purpose: str) -> URLSafeSerializer:
    return _serializer(current_app.config["SECRET_KEY"], purpose)


def pixel_path(message_id: int) -> str:
    return f"/t/o/{_s('open').dumps(message_id)}.gif"


def click_path(message_id: int, url: str) -> str:
    return f"/t/c/{_s('click').dumps([message_id, url])}"


def read_open(token: str) -> int:
    """The message id inside a pixel token."""
    try:
        value = _s("open").loads(token)
    except (BadSignature, UnicodeDecodeError, ValueError) as exc:
        raise BadTrackingLink from exc
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadTrackingLink
    return value


def read_click(token: str) -> tuple[int, str]:
    """(message id, destination) inside a click token; only http(s) destinations."""
    try:
        value: Any = _s("click").loads(token)
    except (BadSignature, UnicodeDecodeError, ValueError) as exc:
        raise BadTrackingLink from exc
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
        raise BadTrackingLink
    url = value[1]
    if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url, re.IGNORECASE):
        raise BadTrackingLink
    return value[0], url


def rewrite(html: str, message_id: int) -> str:
    """Route http(s) links through the click redirect and add the open pixel. Herald's own
    candidate pages (invitation, unsubscribe) are left alone: they record their own visits."""
    base = current_app.config["PUBLIC_BASE_URL"]
    own = (f"{base}/i/", f"{base}/u/", f"{base}/t/")

    def swap(match: re.Match) -> str:
        url = match.group(2).replace("&amp;", "&")
        if url.startswith(own) or len(url) > MAX_URL:
            return match.group(0)
        return match.group(1) + base + click_path(message_id, url) + match.group(3)

    html = _HREF.sub(swap, html)
    pixel = (
        f'<img src="{base}{pixel_path(message_id)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px" aria-hidden="true">'
    )
    at = html.lower().rfind("</body>")
    return html[:at] + pixel + html[at:] if at >= 0 else html + pixel
