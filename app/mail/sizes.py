"""The size of a value's text before it is built: escaped, as str() or repr() prints it (a list
prints its items' reprs), or as JSON; each shared part measured once and the walk stopped as soon
as it is over the limit (nested references cost nothing to build and gigabytes to print)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from app.mail.bounds import (
    MAX_DEPTH,
    MAX_VALUE_LEN,
    OutputTooLarge,
    TemplateProblem,
    check_len,
    prints_a_function,
    too_much_output,
)

_ESCAPED = (("&", 4), ("<", 3), (">", 3), ('"', 4), ("'", 4))  # extra characters each adds


def escaped_len(text: str) -> int:
    """len(escape(text)), without building it."""
    if hasattr(text, "__html__"):
        return len(text)
    return len(text) + sum(text.count(c) * extra for c, extra in _ESCAPED)


LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def line_count(text: str) -> int:
    """An upper bound of len(text.splitlines()) + 1."""
    return 1 + sum(text.count(c) for c in LINE_BREAKS)


def text_size(value: Any, limit: int = MAX_VALUE_LEN, *, escaped: bool = False) -> int:
    """An upper bound of len(str(value)) (of the escaped text when `escaped`), refused over
    `limit`; a function is refused (its text would be its address)."""
    if isinstance(value, str):
        size = escaped_len(value) if escaped else len(value)
    elif isinstance(value, int | float) or value is None:
        return 30  # (ints are at most MAX_INT_BITS long)
    else:
        size = Shape(limit).of(value).size * (6 if escaped else 1)
    check_len(size, limit)
    return size


def check_total(items: Any, base: int = 0, *, escaped: bool = False) -> None:
    """Refuse before joining `items` (plus `base` characters of separators) into one string."""
    check_len(base)
    size = base
    for item in items:
        try:
            size += text_size(item, MAX_VALUE_LEN - size, escaped=escaped)
        except OutputTooLarge:
            raise too_much_output() from None


def json_size(value: Any, indent: int | None, limit: int = MAX_VALUE_LEN) -> int:
    """An upper bound of the length of value|tojson(indent), refused over `limit`."""
    shape = Shape(limit, json=True).of(value)
    size = shape.size + shape.nodes * (1 + (indent or 0) * shape.height)
    if size > limit:
        raise too_much_output(limit)
    return size


@dataclass
class Measure:
    size: int  # characters of its repr (or JSON)
    nodes: int  # values in it
    height: int  # nesting


class Shape:
    """Measures the text a value prints as (repr, as str() of a list does, or JSON) from its
    parts, each shared part once, stopping as soon as it is over the limit."""

    def __init__(self, limit: int, json: bool = False) -> None:
        self.limit = limit
        self.json = json
        self.seen: dict[int, Measure] = {}

    def of(self, value: Any, depth: int = 0) -> Measure:
        if isinstance(value, str):
            return Measure(self._string(value), 1, 0)
        if value is None or isinstance(value, bool | float):
            return Measure(25, 1, 0)
        if isinstance(value, int):
            return Measure(value.bit_length() // 3 + 2, 1, 0)
        if isinstance(value, Undefined):
            return Measure(0, 1, 0)
        if callable(value):
            raise prints_a_function(value)
        known = self.seen.get(id(value))
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            raise TemplateProblem("This template builds a value nested too deeply to print.")
        measure = self._container(value, depth)
        self.seen[id(value)] = measure
        return measure

    def _container(self, value: Any, depth: int) -> Measure:
        if isinstance(value, Namespace):
            value = object.__getattribute__(value, "_Namespace__attrs")
        if isinstance(value, bytes | bytearray):
            return Measure(4 * len(value) + 14, 1, 0)
        if isinstance(value, Mapping):
            parts: Any = (x for pair in value.items() for x in pair)
        elif isinstance(value, list | tuple | set | frozenset) or type(value).__name__.startswith(
            "dict_"
        ):
            parts = value
        else:
            return Measure(200, 1, 0)  # a date, a range, a loop: a short repr
        size, nodes, height = 16, 1, 0
        for part in parts:
            inner = self.of(part, depth + 1)
            size += inner.size + 4
            nodes += inner.nodes
            height = max(height, inner.height + 1)
            if size > self.limit:
                raise too_much_output(self.limit)
        return Measure(size, nodes, height)

    def _string(self, text: str) -> int:
        if self.json:
            if text.isascii() and text.isprintable():
                extra = text.count('"') + text.count("\\")
                return len(text) + 2 + extra + 5 * sum(text.count(c) for c in "<>&'")
            return 12 * len(text) + 2
        if text.isprintable():
            return len(text) + 10 + text.count("\\") + text.count("'")
        return 10 * len(text) + 10
