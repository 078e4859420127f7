"""Reading an uploaded CSV as a stream of ~1 MB pieces, so that a 50 MB file costs a few MB.

Python's csv module cannot resume after an unbalanced quote (it swallows the rest of the file into
one cell) and holds a whole line, however long. So physical lines are cut here, bounded in bytes,
blank ones skipped in bulk, and grouped into records of at most a few lines (a quoted cell may
span lines); csv then parses one record at a time. A record that breaks a limit becomes a
`Problem` at its first line and reading goes on with the next line.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "latin-1": "Latin-1 (ISO-8859-1)"}
_C1 = bytes(range(0x80, 0xA0))
_NOT_C1 = bytes(b for b in range(256) if b not in _C1)
_CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}  # C1 bytes Windows-1252 leaves unassigned
_NON_SPACE = re.compile(rb"[^ \t\r\n\f\v]")
_IN_QUOTES = re.compile(r'[^"]*(?:""[^"]*)*')  # a quoted cell's inside, up to its closing quote
BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class Limits:
    """How big a line, a cell and a multi-line record may be."""

    line_bytes: int = 100 * 1024
    cell_chars: int = 10_000
    record_lines: int = 20


@dataclass(frozen=True)
class Problem:
    """A record that could not be read: why, and what of it can be shown."""

    reason: str
    raw: list[str] = field(default_factory=list)


class Sniff:
    """What one pass over the upload learns while it is stored: size, text or binary, encoding."""

    def __init__(self) -> None:
        self.size = 0
        self.binary = False
        self.has_text = False
        self.c1: set[int] = set()
        self._utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()

    def feed(self, piece: bytes) -> None:
        """Take the next piece of the file, in order."""
        if self.size < 65536 and b"\x00" in piece[: 65536 - self.size]:
            self.binary = True
        self.size += len(piece)
        self.has_text = self.has_text or _NON_SPACE.search(piece) is not None
        self.c1.update(piece.translate(None, _NOT_C1))
        if self._utf8 is not None:
            try:
                self._utf8.decode(piece)
            except UnicodeDecodeError:
                self._utf8 = None

    def encoding(self) -> str:
        """UTF-8 if every byte decodes; else Windows-1252 when C1 bytes (0x80–0x9F) it defines
        appear (a Latin-1 reading would turn its € “ ” into control characters); else Latin-1."""
        if self._utf8 is not None:
            try:
                self._utf8.decode(b"", final=True)
                return "utf-8"
            except UnicodeDecodeError:
                self._utf8 = None
        if self.c1 and not self.c1 & _CP1252_UNDEFINED:
            return "cp1252"
        return "latin-1"


def lines(pieces: Iterable[bytes], encoding: str, limit: int) -> Iterator[tuple[int, str | None]]:
    """(line number, text with its newline) of each non-blank physical line; None as the text of
    a line over `limit` bytes, which is dropped piece by piece, never held whole."""
    buffer, pos, number, dropping, first = b"", 0, 1, False, True
    for piece in pieces:
        buffer = buffer[pos:] + piece
        pos = 0
        if first and piece:  # pieces are ~1 MB: a BOM is never split across two
            first = False
            if encoding == "utf-8" and buffer.startswith(BOM):
                pos = len(BOM)
        while True:
            if dropping:
                end = buffer.find(b"\n", pos)
                if end < 0:
                    pos = len(buffer)
                    break
                pos, number, dropping = end + 1, number + 1, False
            text = _NON_SPACE.search(buffer, pos)  # blank lines before it are skipped at once
            blank_end = buffer.rfind(b"\n", pos, text.start() if text else len(buffer)) + 1
            if blank_end:
                number += buffer.count(b"\n", pos, blank_end)
                pos = blank_end
            end = buffer.find(b"\n", pos)
            if end < 0:
                if len(buffer) - pos > limit:
                    yield number, None
                    pos, dropping = len(buffer), True
                break
            yield (
                number,
                None if end - pos > limit else buffer[pos : end + 1].decode(encoding, "replace"),
            )
            pos, number = end + 1, number + 1
    rest = b"" if dropping else buffer[pos:]
    if _NON_SPACE.search(rest):
        yield number, rest.decode(encoding, "replace")


def ends_in_quotes(text: str, delimiter: str, inside: bool) -> bool:
    """Whether a line, read from inside a quoted cell or not, ends inside one (csv's rules: a
    quote opens a cell only at its start, and "" inside a quoted cell is a quote)."""
    pos = 0
    if not inside and text.startswith('"'):
        pos, inside = 1, True
    opener = delimiter + '"'
    while True:
        if inside:
            pos = _IN_QUOTES.match(text, pos).end()  # type: ignore[union-attr] - always matches
            if pos >= len(text):
                return True
            pos, inside = pos + 1, False
        found = text.find(opener, pos)
        if found < 0:
            return False
        pos, inside = found + 2, True


def records(
    numbered: Iterable[tuple[int, str | None]], delimiter: str, limits: Limits
) -> Iterator[tuple[int, list[str] | Problem]]:
    """(first line number, cells or Problem) of every non-blank record."""
    source, again = iter(numbered), deque[tuple[int, str | None]]()
    while (item := again.popleft() if again else next(source, None)) is not None:
        number, text = item
        if text is None:
            kb = limits.line_bytes // 1024
            yield number, Problem(f"The line is over {kb} KB, so it was not read.")
            continue
        if '"' not in text:  # the common line: no csv needed
            cells = _plain_cells(text, delimiter, limits)
            if cells is not None:
                yield number, cells
            continue
        held = [item]
        inside = ends_in_quotes(text, delimiter, False)
        while inside:
            following = again.popleft() if again else next(source, None)
            if following is None:
                break
            held.append(following)
            if following[1] is None or following[0] - number >= limits.record_lines:
                break
            inside = ends_in_quotes(following[1], delimiter, True)
        if inside:
            yield (
                number,
                Problem(
                    "A quote opened here is never closed (a quoted cell may span at most "
                    f"{limits.record_lines} lines), so this line was not read.",
                    [text[:200]],
                ),
            )
            again.extendleft(reversed(held[1:]))
            continue
        cells = _cells(held, delimiter, limits)
        if isinstance(cells, Problem) or any(cell.strip() for cell in cells):
            yield number, cells


def _plain_cells(text: str, delimiter: str, limits: Limits) -> list[str] | Problem | None:
    """A line without quotes, as csv would read it (None when blank), at str.split's speed."""
    body = text.rstrip("\r\n")
    if "\r" in body or "\x00" in body:  # csv's errors for these
        cells = _cells([(0, text)], delimiter, limits)
        return cells if isinstance(cells, Problem) or any(c.strip() for c in cells) else None
    if not body.replace(delimiter, "").strip():
        return None
    cells = body.split(delimiter)
    if len(body) > limits.cell_chars and any(len(c) > limits.cell_chars for c in cells):
        return _too_long(cells, limits)
    return cells


def _too_long(cells: list[str], limits: Limits) -> Problem:
    shown = [c if len(c) <= 100 else c[:100] + "…" for c in cells[:50]]
    return Problem(f"A cell is over {limits.cell_chars:,} characters.", shown)


def _cells(held: list[tuple[int, str | None]], delimiter: str, limits: Limits) -> list | Problem:
    """Parse one record; blank lines skipped inside a quoted cell were newlines of that cell."""
    parts, last = [], held[0][0]
    for number, text in held:
        parts.append("\n" * (number - last - 1) + (text or ""))
        last = number
    try:
        rows = list(csv.reader(["".join(parts)], delimiter=delimiter))
    except csv.Error as exc:
        return Problem(f"Unreadable: {exc}.", [held[0][1][:200]])  # type: ignore[index]
    cells = rows[0] if rows else []
    if any(len(cell) > limits.cell_chars for cell in cells):
        return _too_long(cells, limits)
    return cells
