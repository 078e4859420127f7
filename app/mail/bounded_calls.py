"""Calls a template makes on values, bounded before they run: string methods that can grow
their text ("x".ljust(10**8), s.replace("a", big), sep.join(...), s.translate(...)), str.format
and format_map, and '%' formatting (widths, precisions, how many times an argument is repeated).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import update_wrapper
from string import Formatter
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2.runtime import LoopContext, Undefined
from jinja2.sandbox import SandboxedFormatter
from markupsafe import EscapeFormatter, Markup

from app.mail.bounded_compare import check_compare
from app.mail.bounds import (
    MAX_ITEMS,
    MAX_WIDTH,
    MAX_WORDS_INPUT,
    TemplateProblem,
    bounded_list,
    check_input,
    check_len,
    check_width,
    prints_a_function,
    too_many_items,
    too_wide,
)
from app.mail.sizes import check_total, escaped_len, line_count, text_size

_PERCENT = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?[hlL]?([a-zA-Z%])")
_NUMBER = re.compile(r"\d+")
_FIELD_EXTRA = 400  # what formatting a number can add beyond its width (a float's digits)
_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _width(number: str) -> int:
    if number == "*" or len(number) > 5 or int(number) > MAX_WIDTH:
        raise too_wide()
    return int(number)


def _check_fields(fmt: str, fields: int, widest: int, repeat: bool, values: list[Any]) -> None:
    """Refuse a format whose fields, each as long as the longest value, would be too long."""
    if not fields:
        return
    escaped = isinstance(fmt, Markup)
    longest = max((text_size(v, escaped=escaped) for v in values), default=0)
    check_len(len(fmt) + fields * (longest * (10 if repeat else 1) + widest + _FIELD_EXTRA))


def check_percent(fmt: str, args: Any) -> None:
    """'%' formatting: widths and precisions up to MAX_WIDTH, the result bounded."""
    fields, widest, repeat = 0, 0, False
    for width, precision, conversion in _PERCENT.findall(fmt):
        if conversion == "%":
            continue
        widest = max(widest, _width(width or "0"), _width(precision or "0"))
        fields += 1
        repeat = repeat or conversion in "ra"
    _check_fields(fmt, fields, widest, repeat, list(args) if isinstance(args, tuple) else [args])


def check_format(fmt: str, args: tuple, kwargs: Mapping) -> None:
    """str.format / format_map: no width taken from an argument, widths bounded, result too."""
    fields, widest, repeat = 0, 0, False
    for _literal, name, spec, conversion in Formatter().parse(fmt):
        if name is None:
            continue
        if "{" in (spec or ""):
            raise TemplateProblem(
                "A format in this template takes its width from a value ('{:{}}'); "
                "write the width in the format itself."
            )
        for number in _NUMBER.findall(spec or ""):
            widest = max(widest, _width(number))
        fields += 1
        repeat = repeat or conversion in ("r", "a")
    _check_fields(fmt, fields, widest, repeat, [*args, *kwargs.values()])


class _Formatter(SandboxedFormatter):
    """The sandbox's formatter, refusing to print a function (its text is its address)."""

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if callable(value) and not isinstance(value, Undefined):
            raise prints_a_function(value)
        return super().convert_field(value, conversion)


class _EscapeFormatter(_Formatter, EscapeFormatter):
    pass


def wrap_str_format(env: Any, value: Any) -> Any:
    """str.format and format_map as Jinja's sandbox wraps them, checked before they run."""
    if not isinstance(value, MethodType | BuiltinMethodType) or value.__name__ not in (
        "format",
        "format_map",
    ):
        return None
    owner = value.__self__
    if not isinstance(owner, str):
        return None
    is_map = value.__name__ == "format_map"
    if isinstance(owner, Markup):
        formatter: _Formatter = _EscapeFormatter(env, escape=owner.escape)
    else:
        formatter = _Formatter(env)

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            kwargs, args = args[0], ()
        check_format(owner, args, kwargs)
        return type(owner)(formatter.vformat(owner, args, kwargs))

    return update_wrapper(wrapper, value)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _pieces(text: str, sep: Any, maxsplit: Any) -> int:
    if isinstance(maxsplit, int) and maxsplit >= 0:
        return maxsplit + 1
    if sep:
        return text.count(sep) + 1
    if text.isascii():
        return sum(text.count(c) for c in _ASCII_SPACE) + 1
    return len(text) // 2 + 1


def _check_str_method(text: str, name: str, args: tuple, kwargs: dict) -> tuple:
    if name in ("ljust", "rjust", "center", "zfill"):
        check_width(_arg(args, kwargs, 0, "width"))
    elif name == "expandtabs":
        size = _arg(args, kwargs, 0, "tabsize", 8)
        check_width(size)
        check_len(len(text) + text.count("\t") * max(int(size), 0))
    elif name == "replace" and len(args) >= 2:
        old, new = str(args[0]), args[1]
        count = _arg(args, kwargs, 2, "count", -1)
        found = text.count(old) if old else len(text) + 1
        found = min(found, count) if isinstance(count, int) and count >= 0 else found
        grow = escaped_len(new) if isinstance(text, Markup) else len(str(new))
        check_len(len(text) + found * grow)
    elif name == "join" and args:
        items = bounded_list(args[0])
        escaped = isinstance(text, Markup)
        check_total(items, max(len(items) - 1, 0) * len(text), escaped=escaped)
        return (items, *args[1:])
    elif name in ("split", "rsplit"):
        sep, maxsplit = _arg(args, kwargs, 0, "sep"), _arg(args, kwargs, 1, "maxsplit", -1)
        if _pieces(text, sep, maxsplit) > MAX_ITEMS:
            raise too_many_items()
    elif name == "splitlines" and line_count(text) > MAX_ITEMS:
        raise too_many_items()
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        check_len(len(text) * max(longest, 1))
    elif name == "striptags":
        check_input("striptags", text, MAX_WORDS_INPUT)
    elif name == "encode":
        check_len(12 * len(text))
    elif name in ("upper", "lower", "casefold", "title", "swapcase", "capitalize"):
        if not text.isascii():
            check_len(3 * len(text))
    return args


_GROWING = {"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join", "split"}
_GROWING |= {"rsplit", "splitlines", "translate", "hex"}


def check_method(owner: Any, name: str, args: tuple, kwargs: dict) -> tuple:
    """Before a method of a string, bytes or number runs: refuse what would build too much.
    Returns the arguments to call it with (an iterator read into a bounded list)."""
    if isinstance(owner, str):
        return _check_str_method(owner, name, args, kwargs)
    if isinstance(owner, list | tuple) and name in ("count", "index") and args:
        check_compare("in", args[0], owner)
    elif isinstance(owner, LoopContext) and name == "changed":
        check_compare("eq", args, args)  # compared with the previous iteration's values
    if isinstance(owner, bytes | bytearray) and name in _GROWING:
        raise TemplateProblem(f"Templates can't use .{name}() on bytes.")
    if isinstance(owner, int) and name == "to_bytes":
        length = _arg(args, kwargs, 0, "length", 1)
        if isinstance(length, int):
            check_len(length)
    return args
