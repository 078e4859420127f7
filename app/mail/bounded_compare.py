"""Comparisons bounded before they run. ==, <, 'in', the tests eq, lt, in... (and select or
reject with them), list.count and .index, and the filters that sort, group or deduplicate run in
C, where the render's clock is not checked, and compare a part again each time it appears: two
lists doubled 60 times compare 2**60 items, `t in [s] * 50000` a billion characters. So when a
side is a container or a long string, the work is measured first from both sides (each
repeated part counted each time, the walk stopped at the limit) and refused over MAX_COMPARED;
it is counted against the message's budget. Ints and short strings take a fast path.
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Mapping
from functools import update_wrapper
from typing import Any

from jinja2.filters import FILTERS, make_attrgetter, make_multi_attrgetter

from app.mail.bounds import (
    MAX_COMPARED,
    MAX_DEPTH,
    TemplateProblem,
    bounded_list,
    charge,
    count_compared,
    too_much_compared,
)

SHORT = 256  # strings shorter than this are compared without measuring
OPERATORS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda item, seq: item in seq,
    "notin": lambda item, seq: item not in seq,
}
_CONTAINERS = (list, tuple, dict, set, frozenset)
_SETS = (dict, set, frozenset)  # 'in' hashes the item: a tuple is hashed through all its parts


class _Over(Exception):
    """The walk went over its limit."""


class _Walk:
    """The items and characters comparing (or hashing) values goes through at most, counting
    a part each time it appears but walking it once; refused as soon as it is over `limit`."""

    def __init__(self, limit: int = MAX_COMPARED) -> None:
        self.limit = limit
        self.seen: dict[int, int] = {}
        self.total = 0

    def add(self, value: Any) -> int:
        try:
            self.total += self.of(value, 0)
        except _Over:
            raise too_much_compared(self.limit) from None
        if self.total > self.limit:
            raise too_much_compared(self.limit)
        return self.total

    def of(self, value: Any, depth: int) -> int:
        if isinstance(value, str | bytes):
            return len(value) + 1
        if not isinstance(value, _CONTAINERS) and not type(value).__name__.startswith("dict_"):
            return 1
        known = self.seen.get(id(value))
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            raise TemplateProblem("This template compares values nested too deeply.")
        parts: Any = value.items() if isinstance(value, Mapping) else value
        total = 1
        for part in parts:
            if isinstance(part, tuple) and isinstance(value, Mapping):
                total += self.of(part[0], depth + 1) + self.of(part[1], depth + 1)
            else:
                total += self.of(part, depth + 1)
            if total > self.limit:
                raise _Over
        self.seen[id(value)] = total
        return total


def _work(value: Any) -> int | None:
    """The walk's total for one value, or None when it is over the limit."""
    try:
        return _Walk().of(value, 0)
    except _Over:
        return None


def check_tuple(value: tuple) -> None:
    """A tuple built by a template, when it holds tuples: hashing it (a dict key, a lookup,
    'in' a dict) goes through all its parts each time they appear, so its flattened size is
    bounded as it is built ((ns.a, ns.a) sixty times over would hash 2**60 items)."""
    if any(isinstance(part, tuple) for part in value):
        _Walk().add(value)


def _large(value: Any) -> bool:
    return isinstance(value, _CONTAINERS) or (isinstance(value, str | bytes) and len(value) > SHORT)


def check_compare(op: str, left: Any, right: Any) -> None:
    """Refuse a comparison that would go through too many items or characters."""
    if op in ("in", "notin"):
        if isinstance(right, _SETS):
            if isinstance(left, tuple | frozenset):
                count_compared(_Walk().add(left))
        elif isinstance(right, list | tuple) and right:
            whole = _work(right)
            each = _work(left) if whole is None else None
            if whole is None and (each is None or each * len(right) > MAX_COMPARED):
                raise too_much_compared()
            count_compared(whole if whole is not None else each * len(right))  # type: ignore[operator]
        return
    if not (_large(left) or _large(right)):
        return
    if isinstance(left, str) and isinstance(right, str):
        count_compared(min(len(left), len(right)))
        return
    sizes = [size for size in (_work(left), _work(right)) if size is not None]
    if not sizes:
        raise too_much_compared()
    count_compared(min(sizes))


def compare(op: str, left: Any, right: Any) -> Any:
    """One comparison of the template (`a == b`, `x in items`), checked first."""
    if type(left) in (int, float, bool) or type(right) in (int, float, bool):
        if op not in ("in", "notin"):
            return OPERATORS[op](left, right)
    check_compare(op, left, right)
    return OPERATORS[op](left, right)


def compare_chain(left: Any, *operands: tuple[str, Any]) -> Any:
    """`a < b < c`: each pair compared as Python does, the next operand computed only if the
    comparison so far holds."""
    result: Any = True
    for op, get in operands:
        right = get()
        result = compare(op, left, right)
        if not result:
            return result
        left = right
    return result


_TESTS = {
    "==": "eq",
    "eq": "eq",
    "equalto": "eq",
    "!=": "ne",
    "ne": "ne",
    ">": "gt",
    "gt": "gt",
    "greaterthan": "gt",
    "ge": "gteq",
    ">=": "gteq",
    "<": "lt",
    "lt": "lt",
    "lessthan": "lt",
    "<=": "lteq",
    "le": "lteq",
    "in": "in",
}


def _test(op: str) -> Any:
    def checked(value: Any, other: Any) -> Any:
        return compare(op, value, other)

    return checked


def bounded_tests(tests: dict[str, Any]) -> dict[str, Any]:
    """The given tests with those that compare values checked (select, reject and
    selectattr call them too)."""
    return tests | {name: _test(op) for name, op in _TESTS.items() if name in tests}


def _keys(name: str, args: dict[str, Any]) -> tuple[list[Any], bool]:
    """The keys a filter would compare or hash, and whether it lower-cases them."""
    value = args["value"]
    if name == "dictsort":
        position = 1 if args["by"] == "value" else 0
        return [pair[position] for pair in value.items()], not args["case_sensitive"]
    env, attribute = args["environment"], args.get("attribute")
    if attribute is None:
        keys = list(value)
    elif name == "sort":
        keys = list(map(make_multi_attrgetter(env, attribute), value))
    else:
        getter = make_attrgetter(env, attribute, default=args.get("default"))
        keys = list(map(getter, value))
    return keys, not args["case_sensitive"]


def _checks_keys(name: str) -> Any:
    """sort, groupby, dictsort, unique, min, max: the keys measured first. Sorting compares
    each key about log2(n) times; case-insensitive, each string key is lower-cased into a new
    string, counted as memory the render builds."""
    original = FILTERS[name]
    signature = inspect.signature(original)

    def bounded(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        value = bound.arguments["value"]
        if name != "dictsort" and not isinstance(value, str):
            bound.arguments["value"] = value = bounded_list(value)
        else:
            bounded_list(value)
        keys, lowered = _keys(name, bound.arguments)
        walk = _Walk()
        for key in keys:
            walk.add(key)
        rounds = (
            1 if name in ("unique", "min", "max") else max(1, math.ceil(math.log2(len(keys) or 1)))
        )
        if walk.total * rounds > MAX_COMPARED:
            raise too_much_compared()
        if lowered:
            charge(sum(len(key) + 49 for key in keys if isinstance(key, str)))
        count_compared(walk.total * rounds)
        return original(*bound.args, **bound.kwargs)

    return update_wrapper(bounded, original)


KEYED = {
    name: _checks_keys(name) for name in ("sort", "groupby", "dictsort", "unique", "min", "max")
}
