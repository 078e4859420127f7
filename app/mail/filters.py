"""Herald's own template filters: dates and times in the recipient's time zone and locale, and
web addresses as links in HTML."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime, format_time
from jinja2 import pass_context, pass_eval_context
from jinja2.runtime import Context
from markupsafe import Markup, escape


def _zone(ctx: Context) -> ZoneInfo:
    name = ctx.get("recipient_timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
    if isinstance(value, str) and value:
        try:
            return _as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


@pass_context
def filter_datetime(ctx: Context, value: Any) -> str:
    """'Tuesday 3 March 2026, 14:00 CET' in the recipient's time zone and locale."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    local = moment.astimezone(_zone(ctx))
    text = format_datetime(local, "EEEE d MMMM y, HH:mm", locale=ctx.get("locale") or "en_GB")
    return f"{text} {local.strftime('%Z')}"


@pass_context
def filter_date(ctx: Context, value: Any) -> str:
    """'Tuesday 3 March 2026' in the recipient's time zone and locale."""
    moment = _as_datetime(value)
    if moment is None:
        return format_date(value, "EEEE d MMMM y") if isinstance(value, date) else str(value or "")
    local = moment.astimezone(_zone(ctx))
    return format_date(local, "EEEE d MMMM y", locale=ctx.get("locale") or "en_GB")


@pass_context
def filter_time(ctx: Context, value: Any) -> str:
    """'14:00 CET' in the recipient's time zone."""
    moment = _as_datetime(value)
    if moment is None:
        return str(value or "")
    local = moment.astimezone(_zone(ctx))
    return (
        f"{format_time(local, 'HH:mm', locale=ctx.get('locale') or 'en_GB')} {local.strftime('%Z')}"
    )


_LINKABLE = re.compile(r"^https?://[^\s<>\"'`]+$")


@pass_eval_context
def filter_link(eval_ctx: Any, value: Any) -> str:
    """A web address as a link in HTML (a video-call URL); anything else as plain text."""
    text = "" if value is None else str(value)
    if not eval_ctx.autoescape:
        return text
    if _LINKABLE.match(text):
        return Markup('<a href="{0}">{0}</a>').format(text)  # (format escapes the value)
    return escape(text)
