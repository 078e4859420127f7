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
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

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


class HeraldSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with time and size checks on calls and on *, **, + (no constant folding)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        _check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        _check_time()
        if op == "**" and isinstance(right, int) and abs(right) > 100:
            raise SecurityError("Exponents above 100 are not allowed in templates.")
        if op == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if len(seq) * n > MAX_VALUE_LEN:
                        raise SecurityError("That value would be too large to render.")
        result = {"*": operator.mul, "**": operator.pow, "+": operator.add}[op](left, right)
        if isinstance(result, str | list | tuple) and len(result) > MAX_VALUE_LEN:
            raise SecurityError("That value would be too large to render.")
        return result


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
    env.filters.update(datetime=filter_datetime, date=filter_date, time=filter_time)
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


def compile_source(env: HeraldSandbox, source: str, name: str = "template") -> Any:
    """Compile source text or raise a TemplateProblem with line and column."""
    try:
        return env.from_string(source)
    except Exception as exc:  # noqa: BLE001
        problem = explain(exc)
        raise problem from exc


# Incremental compilation for the live preview. Compiling a 20 KB template costs tens of ms, and
# typing changes one spot: so large templates are cut, at top-level line breaks (outside any tag
# and any block), into ~2 KB segments compiled and cached on their own. Templates whose parts
# could share state or whitespace control across a cut are compiled whole.
SEGMENT_CHARS = 2048
_SHARED_STATE = re.compile(
    r"\{%-|-%\}|\{\{-|-\}\}|\{#-|-#\}|\{%\s*(set|macro|import|from|extends|include|block)\b"
)
_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_WORD = re.compile(r"\{%\s*(\w+)")
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
