"""Text search with LIKE: what the user typed, matched literally (% and _ are not wildcards)."""

from __future__ import annotations

ESCAPE = "\\"


def contains(text: str) -> str:
    """A LIKE pattern for rows containing `text` (use with escape=ESCAPE)."""
    term = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{term}%"
