"""The sandbox every email template renders in: Jinja2's ImmutableSandboxedEnvironment with
autoescape, strict variables, date filters in the recipient's time zone, and bounds on time and
memory. Every step that can build something big (operators, '~', filters, string methods,
captured blocks, output) is checked from the sizes of its inputs before it runs, and a message's
parts share one deadline (app.mail.bounds.message_budget).
"""

from __future__ import annotations

import gc
import re
import traceback
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment, SecurityError

from app.mail.bounded_calls import check_method, wrap_str_format
from app.mail.bounded_code import (
    BINOPS,
    HeraldCodeGenerator,
    OutputBuffer,
    TokenLimit,
    bounded_join,
    check_binop,
    finalize,
    literal,
    loop_guard,
)
from app.mail.bounded_compare import bounded_tests, compare, compare_chain
from app.mail.bounded_filters import bounded_filters
from app.mail.bounds import (
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_TEMPLATE_TOKENS,
    TemplateProblem,
    charge_value,
    check_time,
    message_budget,
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


class HeraldSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with time and size checks on calls (string methods and formats
    sized first), every operator (no constant folding), '~', slices, literals, loops, captured
    blocks and output (see app.mail.bounded_code)."""

    intercepted_binops = frozenset(BINOPS)
    code_generator_class = HeraldCodeGenerator
    bounded_join = staticmethod(bounded_join)
    output_buffer = OutputBuffer
    literal = staticmethod(literal)
    compare = staticmethod(compare)
    compare_chain = staticmethod(compare_chain)

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
        check_binop(op, left, right)
        return charge_value(BINOPS[op](left, right))


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
        finalize=finalize,
        extensions=[TokenLimit],
    )
    env.filters.update(
        datetime=filter_datetime, date=filter_date, time=filter_time, link=filter_link
    )
    env.filters = bounded_filters(env.filters)
    env.tests = bounded_tests(env.tests)
    env.globals["_herald_loop"] = loop_guard
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


COLLECT_AFTER_BYTES = 1024 * 1024


def render_bounded(template: Any, context: dict[str, Any], limits: Limits | None = None) -> str:
    """Render a compiled template (or a list of segments, in order) within the time and size
    bounds; TemplateProblem otherwise. Inside message_budget(), the message's budget is used
    (its parts share one deadline); otherwise this render has one of its own."""
    limits = limits or Limits()
    templates = template if isinstance(template, list) else [template]
    output = OutputBuffer(limits.chars)
    with message_budget(limits.seconds) as budget:
        try:
            for one in templates:
                for chunk in one.generate(context):
                    output.append(chunk)
            check_time()
            return "".join(output)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable problem
            problem = _detached(explain(exc), exc)
    del output
    if budget.built > COLLECT_AFTER_BYTES:
        gc.collect()  # see _detached: what a refused bomb built is freed now, not later
    raise problem


def _detached(problem: TemplateProblem, exc: BaseException) -> TemplateProblem:
    """The problem without the render's frames. Jinja's rewritten traceback makes cycles
    (frames, tracebacks, the exception) that keep what the template built alive, up to the
    render's whole memory bound, until the garbage collector runs: the next render would add
    to it. The frames' variables are cleared and the problem keeps no traceback; what
    Jinja's fake frames still hold is collected by render_bounded after a big render."""
    for error in (exc, exc.__context__, exc.__cause__, problem):
        if error is not None and error.__traceback__ is not None:
            traceback.clear_frames(error.__traceback__)
    problem.__cause__ = problem.__context__ = None
    return problem.with_traceback(None)


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
