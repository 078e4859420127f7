"""The sandbox every email template renders in: Jinja2's ImmutableSandboxedEnvironment with
autoescape, strict variables, date filters in the recipient's time zone, and bounds on output size
and render time (checked on every call, operator and output chunk, so loops cannot hang a worker).
"""

from __future__ import annotations

import operator
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime, format_time
from jinja2 import (
    BaseLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_context,
    pass_environment,
    pass_eval_context,
)
from jinja2.compiler import CodeGenerator
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

MAX_OUTPUT_CHARS = 512 * 1024
MAX_RENDER_SECONDS = 2.0
MAX_VALUE_LEN = 1_000_000  # the longest string or list an operator may build


class TemplateProblem(Exception):
    """A template that cannot be rendered, said for a person: what, and where when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"Line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}" if self.line else self.message


_budget = threading.local()  # the running render's deadline, per thread


def _check_time() -> None:
    if time.monotonic() > getattr(_budget, "deadline", float("inf")):
        raise TemplateProblem(f"The template took longer than {MAX_RENDER_SECONDS:g} s to render.")


MAX_WIDTH = 1000  # padding / precision in format specs, center(), indent(), wordwrap()
MAX_INT_BITS = 4096
MAX_LOOP_ITEMS = 2_000_000  # iterations per render, all loops together
_SPEC_NUMBER = re.compile(r"(\d{4,}|\*)")


def _too_big(value: Any) -> bool:
    return isinstance(value, str | list | tuple) and len(value) > MAX_VALUE_LEN


def _weight(seq: Any) -> int:
    """Rough size of a sequence, counting what its (sized) items hold."""
    if isinstance(seq, str):
        return len(seq)
    return sum(len(item) if isinstance(item, str | list | tuple | dict) else 1 for item in seq)


def _check_spec(text: str) -> None:
    """Refuse format specs with huge widths or precisions ('%0999999999d', '{:>99999999}')."""
    for spec in re.findall(r"%[-+ #0]*[\d*]*(?:\.[\d*]+)?[a-zA-Z%]|\{[^{}]*\}", text):
        for number in _SPEC_NUMBER.findall(spec):
            if number == "*" or int(number) > MAX_WIDTH:
                raise SecurityError("That format width is too large.")


def _loop_guard(iterable: Any) -> Any:
    """Wraps every {% for %} iterable: counts iterations and checks the deadline as it goes."""
    for item in iterable:
        _budget.items = getattr(_budget, "items", 0) + 1
        if _budget.items > MAX_LOOP_ITEMS:
            raise TemplateProblem("The template loops too many times.")
        _check_time()
        yield item


def _checked(value: Any) -> Any:
    """Size check on the result of '~' concatenation."""
    if _too_big(value):
        raise SecurityError("That value would be too large to render.")
    return value


class HeraldCodeGenerator(CodeGenerator):
    """Routes '~' through a size check (Jinja compiles it to a plain join otherwise)."""

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:  # noqa: N802
        self.write("environment.checked_size(")
        super().visit_Concat(node, frame)
        self.write(")")


class HeraldSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with time and size checks on calls, loops, '~' and on *, **, +, % (no
    constant folding); format widths and big integers are bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = HeraldCodeGenerator
    checked_size = staticmethod(_checked)

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        _check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """str.format / format_map with bounded widths."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_spec(value.__self__)
            return wrapped(*args, **kwargs)

        return checked

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        _check_time()
        ints = isinstance(left, int) and isinstance(right, int)
        if (
            op == "**"
            and ints
            and (right > 100 or left.bit_length() * max(right, 0) > MAX_INT_BITS)
        ):
            raise SecurityError("That number would be too large.")
        if op == "*":
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError("That number would be too large.")
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if _weight(seq) * n > MAX_VALUE_LEN:
                        raise SecurityError("That value would be too large to render.")
        if op == "%" and isinstance(left, str):
            _check_spec(left)
        table = {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}
        result = table[op](left, right)
        if _too_big(result):
            raise SecurityError("That value would be too large to render.")
        return result


def _width_filter(name: str) -> Any:
    original = DEFAULT_FILTERS[name]

    def bounded(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int) and width > MAX_WIDTH:
            raise SecurityError(f"The {name} width is too large.")
        return original(value, width, *args, **kwargs)

    return bounded


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_spec(str(value))
    return DEFAULT_FILTERS["format"](value, *args, **kwargs)


@pass_environment
def _sum_filter(env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):
        raise SecurityError("sum() adds numbers only.")
    return DEFAULT_FILTERS["sum"](env, iterable, attribute, start)


def _zone(ctx: Context) -> ZoneInfo:
    name = ctx.get("recipient_timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
    if isinstance(value, str) and value:
        try:
            return _as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


@pass_context
def filter_datetime(ctx: Context, value: Any) -> str:
    """'Tuesday 3 March 2026, 14:00 CET' in the recipient's time zone and locale."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    local = moment.astimezone(_zone(ctx))
    text = format_datetime(local, "EEEE d MMMM y, HH:mm", locale=ctx.get("locale") or "en_GB")
    return f"{text} {local.strftime('%Z')}"


@pass_context
def filter_date(ctx: Context, value: Any) -> str:
    """'Tuesday 3 March 2026' in the recipient's time zone and locale."""
    moment = _as_datetime(value)
    if moment is None:
        return format_date(value, "EEEE d MMMM y") if isinstance(value, date) else str(value or "")
    local = moment.astimezone(_zone(ctx))
    return format_date(local, "EEEE d MMMM y", locale=ctx.get("locale") or "en_GB")


@pass_context
def filter_time(ctx: Context, value: Any) -> str:
    """'14:00 CET' in the recipient's time zone."""
    moment = _as_datetime(value)
    if moment is None:
        return str(value or "")
    local = moment.astimezone(_zone(ctx))
    return (
        f"{format_time(local, 'HH:mm', locale=ctx.get('locale') or 'en_GB')} {local.strftime('%Z')}"
    )


_LINKABLE = re.compile(r"^https?://[^\s<>\"'`]+$")


@pass_eval_context
def filter_link(eval_ctx: Any, value: Any) -> str:
    """A web address as a link in HTML (a video-call URL); anything else as plain text."""
    text = "" if value is None else str(value)
    if not eval_ctx.autoescape:
        return text
    if _LINKABLE.match(text):
        return Markup('<a href="{0}">{0}</a>').format(text)  # (format escapes the value)
    return escape(text)


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
        keep_trailing_newline=True,
    )  # segments must join back exactly
    env.filters.update(
        datetime=filter_datetime,
        date=filter_date,
        time=filter_time,
        center=_width_filter("center"),
        indent=_width_filter("indent"),
        format=_format_filter,
        sum=_sum_filter,
        link=filter_link,
    )
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
    if isinstance(exc, OverflowError | MemoryError | RecursionError):
        return TemplateProblem(f"The template is too large or too deep to render ({exc}).")
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

    seconds: float = MAX_RENDER_SECONDS
    chars: int = MAX_OUTPUT_CHARS


def render_bounded(template: Any, context: dict[str, Any], limits: Limits | None = None) -> str:
    """Render a compiled template (or a list of segments, in order) within the time and size
    bounds; TemplateProblem otherwise."""
    limits = limits or Limits()
    _budget.deadline = time.monotonic() + limits.seconds
    _budget.items = 0
    parts: list[str] = []
    size = 0
    templates = template if isinstance(template, list) else [template]
    try:
        for chunk in (c for t in templates for c in t.generate(context)):
            size += len(chunk)
            if size > limits.chars:
                raise TemplateProblem(
                    f"The rendered email is larger than {limits.chars // 1024} KB."
                )
            parts.append(chunk)
            _check_time()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable problem
        raise explain(exc) from exc
    finally:
        _budget.deadline = float("inf")
    return "".join(parts)


def _guard_loops(ast: nodes.Template) -> nodes.Template:
    """Every {% for %} iterates through _herald_loop, which counts and checks the deadline."""
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
    cuts, depth, last_cut = [0], 0, 0
    for match in _SPAN.finditer(source):
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
