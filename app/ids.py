"""Row ids typed into URLs and forms: only ASCII digits, and short enough for a bigint. Core
base: str.isdigit() also accepts '²' and int() refuses it, which would answer 500."""

from __future__ import annotations

MAX_DIGITS = 18  # every 18-digit number fits PostgreSQL's bigint


def id_from(text: str | None) -> int | None:
    """The id the text spells, or None for anything else (signs, spaces, '²', 10**30)."""
    value = (text or "").strip()
    if not value or len(value) > MAX_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def ids_from(text: str | None, limit: int = 100_000) -> list[int]:
    """The ids of a comma-separated list, skipping what is not one."""
    found = (id_from(part) for part in (text or "").split(","))
    return [i for i in found if i is not None][:limit]
