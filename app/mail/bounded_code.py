"""What the sandbox compiles into a template to bound it: '~', slices and list, dict and tuple
literals routed through counted helpers, captured blocks written into a bounded OutputBuffer,
every {{ }} checked before it is printed, operators sized before they run, and a token limit
applied while the parser reads the source."""

from __future__ import annotations

import operator
import sys
from types import GeneratorType
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.compiler import CodeGenerator
from jinja2.ext import Extension
from jinja2.runtime import Undefined, markup_join

from app.mail.bounded_calls import check_percent
from app.mail.bounded_compare import check_tuple
from app.mail.bounds import (
    ITEM_BYTES,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_TEMPLATE_TOKENS,
    MAX_VALUE_LEN,
    TemplateProblem,
    charge,
    charge_value,
    check_len,
    check_time,
    count_iteration,
    prints_a_function,
    prints_an_object,
    too_many_items,
)
from app.mail.sizes import check_total, escaped_len, text_size


def loop_guard(iterable: Any) -> Any:
    """Wraps every {% for %} iterable: counts iterations and checks the deadline as it goes."""
    for item in iterable:
        count_iteration()
        yield item


class OutputBuffer(list):
    """What a captured block ({% set %}, {% filter %}, a macro, a call block) or a render
    writes: refused past its limit, and its chunks joined as it grows so that many small
    chunks do not cost an object each."""

    __slots__ = ("chars", "joined", "limit")

    def __init__(self, limit: int = MAX_VALUE_LEN) -> None:
        super().__init__()
        self.chars = 0
        self.joined = 0  # chunks before this index are already joined
        self.limit = limit

    def append(self, chunk: Any) -> None:
        size = len(chunk)
        self.chars += size
        if self.chars > self.limit:
            check_len(self.chars, self.limit)
        charge(2 * size * (1 if chunk.isascii() else 4))
        super().append(chunk)
        if len(self) - self.joined >= 256:
            check_time()
            tail = "".join(self[self.joined :])
            del self[self.joined :]
            super().append(tail)
            self.joined = len(self)

    def extend(self, chunks: Any) -> None:
        for chunk in chunks:
            self.append(chunk)


def bounded_join(join: Any, items: tuple) -> str:
    """'~' (Jinja joins its operands): the result's length worked out first."""
    check_total(items, escaped=join is markup_join and any(hasattr(x, "__html__") for x in items))
    return charge_value(join(items))


class HeraldCodeGenerator(CodeGenerator):
    """'~' through bounded_join (Jinja compiles it to a plain join otherwise), comparisons
    through a checked helper (app.mail.bounded_compare), captured blocks into an OutputBuffer,
    and list, dict and tuple literals counted (a namespace can keep one from each loop
    iteration: [ns.kept, item])."""

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:  # noqa: N802
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_join({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def buffer(self, frame: Any) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_Getitem(self, node: nodes.Getitem, frame: Any) -> None:  # noqa: N802
        if not isinstance(node.arg, nodes.Slice):
            return super().visit_Getitem(node, frame)
        self.write("environment.sliced(")  # a copy: counted (Jinja slices without a check)
        self.visit(node.node, frame)
        self.write(", slice(")
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_Compare(self, node: nodes.Compare, frame: Any) -> None:  # noqa: N802
        """Through environment.compare (bounded_compare): one operator, or a chain whose
        later operands are computed only when needed, as Python does."""
        if len(node.ops) == 1:
            self.write(f"environment.compare({node.ops[0].op!r}, ")
            self.visit(node.expr, frame)
            self.write(", ")
            self.visit(node.ops[0].expr, frame)
            self.write(")")
            return
        self.write("environment.compare_chain(")
        self.visit(node.expr, frame)
        for operand in node.ops:
            self.write(f", ({operand.op!r}, lambda: ")
            self.visit(operand.expr, frame)
            self.write(")")
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Any) -> None:  # noqa: N802
        self.write("environment.literal(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Any) -> None:  # noqa: N802
        self.write("environment.literal(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Any) -> None:  # noqa: N802
        if node.ctx != "load":
            return super().visit_Tuple(node, frame)
        self.write("environment.literal(")
        super().visit_Tuple(node, frame)
        self.write(")")


@pass_eval_context
def finalize(eval_ctx: Any, value: Any) -> Any:
    """Every {{ }} before it is printed: its text bounded; a function refused (its text would
    be its address); so is any other object that prints only its address."""
    if isinstance(value, str):
        if len(value) * 6 > MAX_VALUE_LEN and eval_ctx.autoescape:
            check_len(escaped_len(value))
        return value
    if value is None or isinstance(value, int | float | Undefined):
        return value
    if callable(value):
        raise prints_a_function(value)
    if isinstance(value, GeneratorType) or type(value).__repr__ is object.__repr__:
        raise prints_an_object(value)  # its text would be its address
    text_size(value, escaped=eval_ctx.autoescape)
    return value


def _check_size(seq: Any, n: int) -> None:
    """A string of len(seq) * n characters or a list of len(seq) * n items would be built."""
    if isinstance(seq, str):
        check_len(len(seq) * n)
    elif len(seq) * n > MAX_ITEMS:
        raise too_many_items()


def check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse *, **, + and % results that would be too large, before computing them (the
    other operators cannot grow a value by more than a bit, checked after)."""
    ints = isinstance(left, int) and isinstance(right, int)
    if op == "**" and ints and (right > 100 or left.bit_length() * max(right, 0) > MAX_INT_BITS):
        raise TemplateProblem("A number in this template would be too large.")
    if op == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateProblem("A number in this template would be too large.")
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and n > 1:
                _check_size(seq, n)
    elif op == "+" and isinstance(left, str) and isinstance(right, str):
        if hasattr(left, "__html__") != hasattr(right, "__html__"):
            check_len(escaped_len(left) + escaped_len(right))
        else:
            check_len(len(left) + len(right))
    elif op == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
        if len(left) + len(right) > MAX_ITEMS:
            raise too_many_items()
    elif op == "%" and isinstance(left, str):
        check_percent(left, right)


BINOPS = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
    "-": operator.sub,
    "/": operator.truediv,
    "//": operator.floordiv,
}


def literal(value: Any) -> Any:
    """A list, dict or tuple literal: counted each time it is built (in a loop, a namespace
    can keep one per iteration)."""
    charge(sys.getsizeof(value) + ITEM_BYTES * len(value))
    if type(value) is tuple:
        check_tuple(value)
    return value


class TokenLimit(Extension):
    """Refuse a template too big to compile cheaply, as the parser reads it: Jinja and
    Python's compiler take about 30 µs and 4 KB per token (500 KB of tags: 8 s, 900 MB)."""

    def filter_stream(self, stream: Any) -> Any:
        for count, token in enumerate(stream, 1):
            if count > MAX_TEMPLATE_TOKENS:
                raise TemplateProblem(
                    f"This template is too complex (over {MAX_TEMPLATE_TOKENS:,} variables, "
                    "tags and operators): simplify it or split it into smaller templates.",
                    token.lineno,
                )
            yield token
