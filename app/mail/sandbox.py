"""The sandbox every email template renders in: Jinja2's ImmutableSandboxedEnvironment with
autoescape, strict variables, date filters in the recipient's time zone, and bounds on time and
memory. Every step that can build something big (operators, '~', filters, string methods,
captured blocks, output) is checked from the sizes of its inputs before it runs, and a message's
parts share one deadline (app.mail.bounds.message_budget).
"""

from __future__ import annotations

import operator
import re
import sys
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_eval_context,
)
from jinja2.compiler import CodeGenerator
from jinja2.ext import Extension
from jinja2.runtime import Context, Undefined, markup_join
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment, SecurityError

from app.mail.bounded_calls import check_method, check_percent, wrap_str_format
from app.mail.bounded_filters import bounded_filters
from app.mail.bounds import (
    ITEM_BYTES,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_TEMPLATE_TOKENS,
    MAX_VALUE_LEN,
    TemplateProblem,
    charge,
    charge_value,
    check_len,
    check_time,
    check_total,
    count_iteration,
    escaped_len,
    message_budget,
    prints_a_function,
    text_size,
    too_many_items,
)
from app.mail.filters import filter_date, filter_datetime, filter_link, filter_time

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_RENDER_SECONDS",
    "TemplateProblem",
    "compile_source",
    "make_env",
    "message_budget",
    "render_bounded",
]


def _loop_guard(iterable: Any) -> Any:
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
    """'~' through bounded_join (Jinja compiles it to a plain join otherwise), captured blocks
    into an OutputBuffer, and list, dict and tuple literals counted (a namespace can keep one
    from each loop iteration: [ns.kept, item])."""

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
def _finalize(eval_ctx: Any, value: Any) -> Any:
    """Every {{ }} before it is printed: its text bounded; a function refused (its text would
    be its address)."""
    if isinstance(value, str):
        if len(value) * 6 > MAX_VALUE_LEN and eval_ctx.autoescape:
            check_len(escaped_len(value))
        return value
    if value is None or isinstance(value, int | float | Undefined):
        return value
    if callable(value):
        raise prints_a_function(value)
    text_size(value, escaped=eval_ctx.autoescape)
    return value


def _check_size(seq: Any, n: int) -> None:
    """A string of len(seq) * n characters or a list of len(seq) * n items would be built."""
    if isinstance(seq, str):
        check_len(len(seq) * n)
    elif len(seq) * n > MAX_ITEMS:
        raise too_many_items()


def _check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse *, **, + and % results that would be too large, before computing them."""
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


_BINOPS = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
    "-": operator.sub,
    "/": operator.truediv,
    "//": operator.floordiv,
}


def _literal(value: Any) -> Any:
    charge(sys.getsizeof(value) + ITEM_BYTES * len(value))
    return value


class HeraldSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with time and size checks on calls, loops, '~', captured blocks, output and
    on *, **, +, % (no constant folding); string methods and formats bounded."""

    intercepted_binops = frozenset(_BINOPS)
    code_generator_class = HeraldCodeGenerator
    bounded_join = staticmethod(bounded_join)
    output_buffer = OutputBuffer
    literal = staticmethod(_literal)

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        check_time()
        owner = getattr(__obj, "__self__", None)
        if owner is not None and not isinstance(owner, type):
            args = check_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        return charge_value(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        return wrap_str_format(self, value)

    @staticmethod
    def sliced(obj: Any, part: slice) -> Any:
        check_time()
        return charge_value(obj[part])

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        check_time()
        _check_binop(op, left, right)
        return charge_value(_BINOPS[op](left, right))


def make_env(loader: BaseLoader | None = None, autoescape: Any = True) -> HeraldSandbox:
    """A sandbox with Herald's filters; one per purpose, compiled templates cached."""
    # optimized=False: no compile-time constant folding; it costs ~30% of compile time on large
    # templates and the sandbox must not fold intercepted operators anyway.
    env = HeraldSandbox(
        loader=loader,
        autoescape=autoescape,
        undefined=StrictUndefined,
        auto_reload=False,
        cache_size=1000,
        optimized=False,
        keep_trailing_newline=True,  # segments must join back exactly
        finalize=_finalize,
        extensions=[TokenLimit],
    )
    env.filters.update(
        datetime=filter_datetime, date=filter_date, time=filter_time, link=filter_link
    )
    env.filters = bounded_filters(env.filters)
    env.globals["_herald_loop"] = _loop_guard
    env.globals.pop("lipsum", None)  # generates unbounded text in one call
    return env


_UNDEFINED = re.compile(r"'(?P<obj>[^']+)' (?:object )?has no attribute '(?P<attr>[^']+)'")
_UNDEFINED_NAME = re.compile(r"'(?P<name>[^']+)' is undefined")


def explain(exc: Exception) -> TemplateProblem:
    """Turn a Jinja error into a readable TemplateProblem (line and column when known)."""
    if isinstance(exc, TemplateProblem):
        return exc
    if isinstance(exc, TemplateSyntaxError):
        return TemplateProblem(f"Syntax error: {exc.message}", exc.lineno, _column(exc))
    if isinstance(exc, UndefinedError):
        text = exc.message or ""
        found = _UNDEFINED_NAME.search(text)
        if found:
            return TemplateProblem(f"Unknown variable '{found['name']}'.")
        found = _UNDEFINED.search(text)
        if found and "Undefined" in found["obj"]:
            return TemplateProblem(f"Unknown or unsafe attribute '{found['attr']}'.")
        if found:
            return TemplateProblem(f"Unknown variable '{found['attr']}' (in {found['obj']}).")
        return TemplateProblem(f"Unknown variable: {text}")
    if isinstance(exc, SecurityError):
        return TemplateProblem(f"Not allowed in a template: {exc}")
    if isinstance(exc, TemplateError):
        return TemplateProblem(f"Template error: {exc.message}")
    if isinstance(exc, TypeError) and "no loader" in str(exc):
        return TemplateProblem(
            "Including, importing or extending other templates isn't available in email templates."
        )
    if isinstance(exc, RecursionError):
        return TemplateProblem(
            "This template calls itself too deeply (a macro or a recursive loop that never stops)."
        )
    if isinstance(exc, OverflowError) and "MAX_RANGE" in str(exc):
        return TemplateProblem(f"This template's range is too long (over {MAX_RANGE:,} numbers).")
    if isinstance(exc, OverflowError | MemoryError):
        return TemplateProblem(f"The template is too large to render ({exc}).")
    return TemplateProblem(f"The template could not be rendered: {exc.__class__.__name__}: {exc}")


def _column(exc: TemplateSyntaxError) -> int | None:
    """Best effort column for a syntax error: the quoted token in the message, else the tag."""
    if not exc.source or not exc.lineno:
        return None
    lines = exc.source.splitlines()
    if exc.lineno > len(lines):
        return None
    line = lines[exc.lineno - 1]
    for token in re.findall(r"'([^']+)'", exc.message or ""):
        position = line.find(token)
        if position >= 0 and token not in ("end of template",):
            return position + 1
    openers = [m.start() for m in re.finditer(r"\{\{|\{%", line)]
    return (openers[-1] + 1) if openers else 1


@dataclass
class Limits:
    """Bounds for one render."""

    seconds: float | None = None  # the configured TEMPLATE_RENDER_SECONDS
    chars: int = MAX_OUTPUT_CHARS


def render_bounded(template: Any, context: dict[str, Any], limits: Limits | None = None) -> str:
    """Render a compiled template (or a list of segments, in order) within the time and size
    bounds; TemplateProblem otherwise. Inside message_budget(), the message's budget is used
    (its parts share one deadline); otherwise this render has one of its own."""
    limits = limits or Limits()
    templates = template if isinstance(template, list) else [template]
    output = OutputBuffer(limits.chars)
    with message_budget(limits.seconds):
        try:
            for one in templates:
                for chunk in one.generate(context):
                    output.append(chunk)
            check_time()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable problem
            raise explain(exc) from exc
    return "".join(output)


def _guard_loops(ast: nodes.Template) -> nodes.Template:
    """Every {% for %} iterates through _herald_loop, which counts and checks the deadline.
    self.block() and super() are refused: Jinja joins a block's output without any bound."""
    for name in ast.find_all(nodes.Name):
        if name.name in ("self", "super") and name.ctx == "load":
            raise TemplateProblem(
                f"'{name.name}' (rendering a block again) isn't available in email templates.",
                name.lineno,
            )
    for loop in ast.find_all(nodes.For):
        guard = nodes.Name("_herald_loop", "load", lineno=loop.lineno)
        loop.iter = nodes.Call(guard, [loop.iter], [], None, None, lineno=loop.lineno)
    return ast


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


def compile_source(env: HeraldSandbox, source: str, name: str = "template") -> Any:
    """Compile source text (loops guarded) or raise a TemplateProblem with line and column."""
    try:
        ast = _guard_loops(env.parse(source))
        code = env.compile(ast)
        return env.template_class.from_code(env, code, env.make_globals(None), None)
    except TypeError as exc:
        if "no loader" in str(exc):
            raise TemplateProblem(
                "Including, importing or extending other templates isn't "
                "available in email templates."
            ) from exc
        raise explain(exc) from exc
    except RecursionError as exc:
        raise TemplateProblem(
            "This template nests too deeply (brackets, tags or expressions inside each other)."
        ) from exc
    except Exception as exc:  # noqa: BLE001
        problem = explain(exc)
        raise problem from exc


# Incremental compilation for the live preview. Compiling a 20 KB template costs tens of ms, and
# typing changes one spot: so large templates are cut, at top-level line breaks (outside any tag
# and any block), into ~2 KB segments compiled and cached on their own. Templates whose parts
# could share state or whitespace control across a cut are compiled whole.
SEGMENT_CHARS = 2048
_SHARED_STATE = re.compile(
    r"\{%-|-%\}|\{\{-|-\}\}|\{#-|-#\}|%\+|\+%|"
    r"\{%[+-]?\s*(set|macro|import|from|extends|include|block)\b"
)
_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_WORD = re.compile(r"\{%[+-]?\s*(\w+)")
_OPENERS = {"for", "if", "macro", "call", "filter", "with", "block", "autoescape", "raw", "trans"}


def split_segments(source: str) -> list[str] | None:
    """Cut points where no tag, expression or block is open; None when it must compile whole."""
    if len(source) < 2 * SEGMENT_CHARS or _SHARED_STATE.search(source):
        return None
    cuts, depth, last_cut, tag_chars = [0], 0, 0, 0
    for match in _SPAN.finditer(source):
        tag_chars += match.end() - match.start()
        if tag_chars > 2 * MAX_TEMPLATE_TOKENS:
            return None  # compiled whole: compile_source counts its tokens
        if depth == 0 and match.start() - last_cut >= SEGMENT_CHARS:
            newline = source.rfind("\n", last_cut, match.start())
            if newline > last_cut:
                cuts.append(newline + 1)
                last_cut = newline + 1
        word = _WORD.match(match.group(0))
        if word:
            name = word.group(1)
            if name in _OPENERS:
                depth += 1
            elif name.startswith("end") and name[3:] in _OPENERS:
                depth -= 1
                if depth < 0:
                    return None
    if depth != 0 or len(cuts) == 1:
        return None
    return [source[a:b] for a, b in zip(cuts, [*cuts[1:], len(source)], strict=True)]
