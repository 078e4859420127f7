"""What one render of a message may spend, and the size a value would have before it is built.

A message's parts (subject, HTML, text) share one budget: a deadline, a count of loop
iterations and of the bytes the template builds along the way. Every place a template can make
something big (operators, filters, string methods, captured blocks, output) asks here first, from
the sizes of its inputs, so a template bomb is refused before it takes the memory.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jinja2.runtime import Undefined

MAX_RENDER_SECONDS = 2.0  # one message, all its parts together (TEMPLATE_RENDER_SECONDS)
MAX_OUTPUT_CHARS = 512 * 1024  # one rendered part
MAX_VALUE_LEN = 1_000_000  # the longest string any step of a render may build (characters)
MAX_ITEMS = 50_000  # the longest list any step may build (sorting it stays well under 0.5 s)
MAX_BUILT_BYTES = 24 * 1024 * 1024  # all one message's render builds (TEMPLATE_RENDER_MEMORY_MB)
MAX_LOOP_ITEMS = 2_000_000  # iterations per message, all loops together
MAX_WORDS_INPUT = 256 * 1024  # text a filter splits into words in one go (title, striptags...)
MAX_WIDTH = 1000  # padding, precision, indentation, fill widths
MAX_INT_BITS = 4096
MAX_TEMPLATE_TOKENS = 6_000  # compiling costs ~30 µs and ~4 KB per token of a template's tags
MAX_MESSAGE_CHARS = 300
MAX_DEPTH = 200  # nesting of lists and dicts a value may have to be printed
MAX_COMPARED = 10_000_000  # items and characters one comparison, sort or lookup may go through
MAX_COMPARED_TOTAL = 20_000_000  # all of one message's comparisons of long values together


class TemplateProblem(Exception):
    """A template that cannot be rendered, said for a person: what, and where when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        if len(message) > MAX_MESSAGE_CHARS:  # it can quote a value the template built
            message = message[:MAX_MESSAGE_CHARS] + "…"
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"Line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}" if self.line else self.message


class OutputTooLarge(TemplateProblem):
    """A value or an output over its bound."""


def too_much_output(limit: int = MAX_VALUE_LEN) -> TemplateProblem:
    return OutputTooLarge(
        f"This template would produce too much output (over {limit:,} characters)."
    )


def check_input(name: str, text: str, limit: int) -> None:
    """Refuse text too long for a filter that splits it into words or runs slowly on it."""
    if len(text) > limit:
        raise TemplateProblem(f"The text given to {name} is too long (over {limit:,} characters).")


def too_many_items(limit: int = MAX_ITEMS) -> TemplateProblem:
    return TemplateProblem(
        f"This template would make a list that is too long (over {limit:,} items)."
    )


def too_wide(limit: int = MAX_WIDTH) -> TemplateProblem:
    return TemplateProblem(f"A width or length in this template is too large (over {limit:,}).")


def prints_a_function(value: Any) -> TemplateProblem:
    name = getattr(value, "__name__", None) or getattr(value, "name", None) or "a function"
    name = {"safe_range": "range"}.get(name, name).lower()  # as the template names it
    return TemplateProblem(
        f"This template prints a function ({name}) instead of a value: "
        "call it with () or remove it."
    )


def prints_an_object(value: Any) -> TemplateProblem:
    name = type(value).__name__.lower()
    return TemplateProblem(
        f"This template prints an object ({name}) instead of a value: "
        "print one of its values, or loop over it."
    )


@dataclass
class Settings:
    """The two bounds an operator can change (TEMPLATE_RENDER_SECONDS, _MEMORY_MB)."""

    seconds: float = MAX_RENDER_SECONDS
    built_bytes: int = MAX_BUILT_BYTES


SETTINGS = Settings()


def configure(seconds: float, memory_mb: int) -> None:
    """Set from the app's configuration when the app is created."""
    SETTINGS.seconds = seconds
    SETTINGS.built_bytes = memory_mb * 1024 * 1024


@dataclass
class Budget:
    """What is left of one message's render."""

    seconds: float
    deadline: float
    loop_items: int = 0
    built: int = 0
    compared: int = 0


_local = threading.local()  # the running message's budget, per thread


@contextmanager
def message_budget(seconds: float | None = None) -> Iterator[Budget]:
    """One budget for everything rendered inside (a message's subject, HTML and text). Inside
    another message_budget, the outer one goes on counting."""
    outer = getattr(_local, "budget", None)
    if outer is not None:
        yield outer
        return
    seconds = SETTINGS.seconds if seconds is None else seconds
    budget = Budget(seconds, time.monotonic() + seconds)
    _local.budget = budget
    try:
        yield budget
    finally:
        _local.budget = None


def check_time() -> None:
    """Stop a render that has used up its time (called from loops, calls, filters, output)."""
    budget = getattr(_local, "budget", None)
    if budget is not None and time.monotonic() > budget.deadline:
        raise TemplateProblem(
            f"This template took too long to render (over {budget.seconds:g} seconds)."
        )


def count_iteration() -> None:
    budget = getattr(_local, "budget", None)
    if budget is None:
        return
    budget.loop_items += 1
    if budget.loop_items > MAX_LOOP_ITEMS:
        raise TemplateProblem("This template loops too many times.")
    if time.monotonic() > budget.deadline:
        check_time()


def charge(nbytes: int) -> None:
    """Count memory a render has built; refuse once the message's total is over its bound."""
    budget = getattr(_local, "budget", None)
    if budget is None:
        return
    budget.built += nbytes
    if budget.built > SETTINGS.built_bytes:
        raise TemplateProblem(
            "This template would produce too much output while rendering "
            f"(over {SETTINGS.built_bytes // (1024 * 1024)} MB in all)."
        )


def too_much_compared(limit: int = MAX_COMPARED) -> TemplateProblem:
    return TemplateProblem(
        "This template compares or sorts values that are too large "
        f"(over {limit:,} items and characters)."
    )


def count_compared(work: int) -> None:
    """Count the items and characters a comparison of long values goes through (it runs in C,
    where the clock is not checked); refuse once the message's total is over its bound."""
    if work > MAX_COMPARED:
        raise too_much_compared()
    budget = getattr(_local, "budget", None)
    if budget is None:
        return
    budget.compared += work
    if budget.compared > MAX_COMPARED_TOTAL:
        raise too_much_compared(MAX_COMPARED_TOTAL)
    check_time()


ITEM_BYTES = 64  # what an item of a new list is counted as: its pointer and a small object


def charge_value(value: Any) -> Any:
    """After a step built a value: refuse one too big, count its memory, pass it on."""
    if isinstance(value, str | bytes):
        if len(value) > MAX_VALUE_LEN:
            raise too_much_output()
        charge(sys.getsizeof(value))
    elif isinstance(value, list | tuple | dict | set):
        if len(value) > MAX_ITEMS:
            raise too_many_items()
        charge(sys.getsizeof(value) + ITEM_BYTES * len(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateProblem("A number in this template would be too large.")
    elif value is not None and not isinstance(value, bool | float | Undefined):
        charge(sys.getsizeof(value) + 128)  # an iterator, a namespace...: and what it holds
    return value


def check_len(chars: int, limit: int = MAX_VALUE_LEN) -> None:
    """Refuse before building a string of `chars` characters."""
    if chars > limit:
        raise too_much_output(limit)


def check_width(*widths: Any) -> None:
    for width in widths:
        if isinstance(width, int) and width > MAX_WIDTH:
            raise too_wide()


def bounded_list(value: Any, limit: int = MAX_ITEMS) -> Any:
    """The items of an iterable, refused before a list longer than `limit` is built. Sized
    collections are passed on as they are."""
    if isinstance(value, Undefined):
        return value
    if hasattr(value, "__len__"):
        if len(value) > limit:
            raise too_many_items(limit)
        return value
    items = []
    for item in value:
        items.append(item)
        if len(items) > limit:
            raise too_many_items(limit)
        if not len(items) % 4096:
            check_time()
    return items
