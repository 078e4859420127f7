"""Jinja's filters with bounds: every filter checks the render's clock and has its result
counted; a filter that can return more than it was given works out the size of its result from
its arguments first and refuses a bomb before building it (replace, indent, wordwrap, join...).
"""

from __future__ import annotations

from functools import update_wrapper
from typing import Any

from jinja2 import pass_environment, pass_eval_context
from jinja2.filters import FILTERS, make_attrgetter, sync_do_slice
from jinja2.utils import _PassArg

from app.mail.bounded_calls import check_percent
from app.mail.bounded_compare import KEYED
from app.mail.bounds import (
    MAX_ITEMS,
    MAX_WORDS_INPUT,
    TemplateProblem,
    bounded_list,
    charge_value,
    check_input,
    check_len,
    check_time,
    check_width,
    too_many_items,
)
from app.mail.sizes import check_total, escaped_len, json_size, line_count, text_size

MAX_URLIZE_INPUT = 64 * 1024  # urlize runs several regular expressions per word
MAX_PPRINT_INPUT = 64 * 1024  # pprint is pure Python and measures each nested part again


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


@pass_eval_context
def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
    text, old_text = _text(s), _text(old)
    escaped = eval_ctx.autoescape and not hasattr(s, "__html__")
    found = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    grow = escaped_len(_text(new)) if eval_ctx.autoescape else len(_text(new))
    check_len((escaped_len(text) if escaped else len(text)) + found * grow)
    return FILTERS["replace"](eval_ctx, s, old, new, count)


def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
    check_width(width)
    text = _text(s)
    lines = line_count(text)
    step = len(width) if isinstance(width, str) else int(width)
    check_len(len(text) + lines * step)
    if lines > MAX_ITEMS:  # each line is a string of its own while indenting
        raise too_many_items()
    return FILTERS["indent"](s, width, first, blank)


def center(value: Any, width: int = 80) -> Any:
    check_width(width)
    return FILTERS["center"](value, width)


@pass_environment
def wordwrap(
    env: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> Any:
    text = _text(s)
    check_input("wordwrap", text, MAX_WORDS_INPUT)
    wrap = env.newline_sequence if wrapstring is None else _text(wrapstring)
    check_len(len(text) * (1 + len(wrap)) + len(wrap))
    return FILTERS["wordwrap"](env, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
    items = bounded_list(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    escaped = eval_ctx.autoescape and (
        hasattr(d, "__html__") or any(hasattr(x, "__html__") for x in items)
    )
    check_total(items, max(len(items) - 1, 0) * text_size(d, escaped=escaped), escaped=escaped)
    return FILTERS["join"](eval_ctx, items, d)


def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
    check_percent(_text(value), kwargs if kwargs else args)
    return FILTERS["format"](value, *args, **kwargs)


@pass_eval_context
def urlize(eval_ctx: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
    text = _text(value)
    check_input("urlize", text, MAX_URLIZE_INPUT)
    extra = sum(len(_text(a)) for a in (*args, *kwargs.values()) if isinstance(a, str))
    links = sum(text.count(c) for c in ".:@")
    check_len(12 * len(text) + links * (extra + 80))
    return FILTERS["urlize"](eval_ctx, value, *args, **kwargs)


@pass_eval_context
def tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
    if indent is not None and (not isinstance(indent, int) or indent > 16):
        raise TemplateProblem("tojson's indent can be at most 16.")
    json_size(value, indent)
    return FILTERS["tojson"](eval_ctx, value, indent)


def pprint(value: Any) -> str:
    if text_size(value) > MAX_PPRINT_INPUT:
        raise TemplateProblem(f"The value given to pprint is too long (over {MAX_PPRINT_INPUT:,}).")
    return FILTERS["pprint"](value)


@pass_environment
def truncate(
    env: Any,
    s: Any,
    length: int = 255,
    killwords: bool = False,
    end: str = "...",
    leeway: int | None = None,
) -> Any:
    if isinstance(length, int) and length < len(_text(end)):
        raise TemplateProblem("truncate's length must be at least as long as its end text.")
    return FILTERS["truncate"](env, s, length, killwords, end, leeway)


def string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    text_size(value)
    return FILTERS["string"](value)


def escape(value: Any) -> Any:
    text_size(value, escaped=True)
    return FILTERS["escape"](value)


def forceescape(value: Any) -> Any:
    check_len(escaped_len(str(value)) if isinstance(value, str) else 6 * text_size(value))
    return FILTERS["forceescape"](value)


def urlencode(value: Any) -> Any:
    size = text_size(value)
    check_len(size * 3 if isinstance(value, str) and value.isascii() else size * 12)
    return FILTERS["urlencode"](value)


@pass_eval_context
def xmlattr(eval_ctx: Any, d: Any, autospace: bool = True) -> Any:
    check_len(6 * text_size(d))
    return FILTERS["xmlattr"](eval_ctx, d, autospace)


def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if isinstance(linecount, int) and linecount > MAX_ITEMS:
        raise too_many_items()
    return FILTERS["batch"](bounded_list(value), linecount, fill_with)


def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
    if isinstance(slices, int) and slices > MAX_ITEMS:
        raise too_many_items()
    return sync_do_slice(bounded_list(value), slices, fill_with)


@pass_environment
def sum_(env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):
        raise TemplateProblem("sum() adds numbers only.")
    return FILTERS["sum"](env, iterable, attribute, start)


def _words(name: str) -> Any:
    """A filter that splits its text into words or pieces: its input is bounded."""
    original = FILTERS[name]

    def bounded(s: Any, *args: Any, **kwargs: Any) -> Any:
        check_input(name, _text(s), MAX_WORDS_INPUT)
        return original(s, *args, **kwargs)

    return update_wrapper(bounded, original)


def _consumes_items(name: str) -> Any:
    """A filter that makes a list of its input's items: the input is bounded as it is read."""
    original = FILTERS[name]
    position = 0 if _PassArg.from_obj(original) is None else 1

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if isinstance(args[position], str) and name == "reverse":
            return original(*args, **kwargs)
        args = (*args[:position], bounded_list(args[position]), *args[position + 1 :])
        return original(*args, **kwargs)

    return update_wrapper(bounded, original)


def guarded(function: Any) -> Any:
    """Every filter: the clock before, the size of what it made after."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        check_time()
        return charge_value(function(*args, **kwargs))

    return update_wrapper(checked, function)


BOUNDED = {
    "replace": replace,
    "indent": indent,
    "center": center,
    "wordwrap": wordwrap,
    "join": join,
    "format": format_,
    "urlize": urlize,
    "tojson": tojson,
    "pprint": pprint,
    "truncate": truncate,
    "string": string,
    "e": escape,
    "escape": escape,
    "forceescape": forceescape,
    "urlencode": urlencode,
    "xmlattr": xmlattr,
    "batch": batch,
    "slice": slice_,
    "sum": sum_,
    **{name: _words(name) for name in ("title", "wordcount", "striptags")},
    **{name: _consumes_items(name) for name in ("list", "reverse")},
    **KEYED,
}


def bounded_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The given filters with Jinja's risky ones replaced, each guarded."""
    return {name: guarded(BOUNDED.get(name, f)) for name, f in filters.items()}
