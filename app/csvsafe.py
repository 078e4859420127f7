"""CSV exports that a spreadsheet opens safely. Core base: candidate, suppression and dashboard
exports all write cells a recruiter may have typed, so the rule lives below every feature."""

from __future__ import annotations


def neutralise(cell: str) -> str:
    """Cells that spreadsheets would run as formulas get a leading apostrophe on export."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
