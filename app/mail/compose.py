"""Compose an org's email from an authored template: render in the sandbox, sanitize the authored
HTML (nh3), wrap it in the org's branded base layout, inline CSS (css-inline), derive the text part.

Branding lives in one place: the base layout (header with logo and colours, footer with postal
address and unsubscribe link) and its stylesheet, whose classes (`button`, `muted`, `details`)
authored content can use.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import css_inline
import nh3
from flask import current_app
from jinja2 import FileSystemLoader, meta, nodes
from markupsafe import Markup

from app.mail import catalogue
from app.mail.render import EMAIL_TEMPLATES, Rendered
from app.mail.sandbox import (
    TemplateProblem,
    compile_source,
    make_env,
    message_budget,
    render_bounded,
    split_segments,
)
from app.mail.text import html_to_text
from app.models import Organization

MAX_SUBJECT = 200
MAX_BODY_BYTES = 500 * 1024

_authored_html = make_env()
_authored_text = make_env(autoescape=False)
_layout = make_env(FileSystemLoader(str(EMAIL_TEMPLATES)))
_inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)

# No <style> in authored HTML: it could hide the footer's address and unsubscribe link. Authors
# use style attributes and the layout's classes.
ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "center"}
GENERIC_ATTRIBUTES = {
    "style",
    "class",
    "align",
    "valign",
    "width",
    "height",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "role",
    "dir",
    "lang",
    "title",
    "aria-label",
    "aria-hidden",
    "colspan",
    "rowspan",
    "color",
}
ALLOWED_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
ALLOWED_ATTRIBUTES["*"] = GENERIC_ATTRIBUTES
ALLOWED_ATTRIBUTES.setdefault("a", set()).update({"href", "target", "name"})


@dataclass(frozen=True)
class Brand:
    """What the base layout needs to know about the organization."""

    name: str
    logo_url: str | None
    primary_color: str
    accent_color: str
    footer_text: str | None
    postal_address: str | None

    @property
    def on_primary(self) -> str:
        """White or near-black text on the primary colour, whichever reads better (WCAG)."""
        return text_on(self.primary_color)

    @property
    def address_lines(self) -> list[str]:
        """The postal address line by line, as the org typed it (the footer breaks there too)."""
        return [line.strip() for line in (self.postal_address or "").splitlines() if line.strip()]

    @property
    def footer_text_lines(self) -> list[str]:
        """The org's footer note line by line, as typed."""
        return [line.strip() for line in (self.footer_text or "").splitlines() if line.strip()]

    @property
    def footer_lines(self) -> list[str]:
        """The org's name, then its address; the name only once when the address starts with it."""
        lines = self.address_lines
        if lines and lines[0].casefold().startswith(self.name.strip().casefold()):
            return lines
        return [self.name, *lines]


def brand_for(org: Organization) -> Brand:
    """The org's branding as the base layout needs it. Built here, in the mail layer, because
    Brand is mail's: the model keeps plain columns and never imports upward."""
    base = current_app.config["PUBLIC_BASE_URL"]
    return Brand(
        name=org.name,
        logo_url=f"{base}/brand/{org.logo_key}" if org.logo_key else None,
        primary_color=org.primary_color,
        accent_color=org.accent_color,
        footer_text=org.footer_text,
        postal_address=org.postal_address,
    )


def text_on(colour: str) -> str:
    """White or near-black text on a #RRGGBB background, whichever reads better (WCAG)."""
    return "#FFFFFF" if contrast(colour, "#FFFFFF") >= 4.5 else "#111111"


def _luminance(hex_color: str) -> float:
    rgb = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #RRGGBB colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def sanitize(html: str) -> str:
    """Strip scripts, event handlers and javascript: URLs from authored HTML (after rendering)."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        strip_comments=True,
    )


CACHE_MAX_CHARS = 64 * 1024  # bigger sources are compiled each time: the cache stays small


@functools.lru_cache(maxsize=2048)
def _compiled_cached(kind: str, source: str) -> Any:
    env = _authored_html if kind == "html" else _authored_text
    return compile_source(env, source)


def _compiled_one(kind: str, source: str) -> Any:
    if len(source) > CACHE_MAX_CHARS:
        return compile_source(_authored_html if kind == "html" else _authored_text, source)
    return _compiled_cached(kind, source)


def _compiled(kind: str, source: str) -> Any:
    """The compiled template, or its segments (see sandbox.split_segments); errors located
    against the whole source."""
    segments = split_segments(source)
    if segments:
        try:
            return [_compiled_one(kind, segment) for segment in segments]
        except TemplateProblem:
            pass  # compile whole: the error (or success) is the whole template's
    return _compiled_one(kind, source)


def parse(source: str) -> nodes.Template:
    """An authored template's AST (TemplateSyntaxError when it has none)."""
    return _authored_text.parse(source)


def check_source(source: str, field: str) -> None:
    """Syntax (with line and column) and variables against the catalogue; TemplateProblem."""
    env = _authored_html if field == "html" else _authored_text
    try:
        ast = env.parse(source)
        undeclared = meta.find_undeclared_variables(ast)
    except Exception as exc:  # noqa: BLE001 - syntax errors, unknown filters or tests
        compile_source(env, source)  # raises the located TemplateProblem
        raise TemplateProblem(f"The template could not be read: {exc}") from exc
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in sorted(undeclared - assigned):
        if name not in catalogue.ROOTS and name not in ("recipient_timezone", "locale"):
            raise TemplateProblem(f"Unknown variable '{name}'.", _line_of(ast, name))
    for path, line in _paths(ast):
        if path.split(".")[0] not in assigned and not catalogue.is_known(path):
            raise TemplateProblem(f"Unknown variable '{path}'.", line)


def _line_of(ast: nodes.Template, name: str) -> int | None:
    return next((n.lineno for n in ast.find_all(nodes.Name) if n.name == name), None)


def _paths(ast: nodes.Template) -> list[tuple[str, int]]:
    """Dotted variable paths like candidate.first_name (outermost Getattr chains only)."""
    found, inner = [], set()
    for node in ast.find_all(nodes.Getattr):
        parts, current = [], node
        while isinstance(current, nodes.Getattr):
            inner.add(id(current.node))
            parts.append(current.attr)
            current = current.node
        if isinstance(current, nodes.Name) and id(node) not in inner:
            found.append((".".join([current.name, *reversed(parts)]), node.lineno))
    return found


def render_authored(
    *,
    subject: str,
    html: str,
    text: str | None,
    brand: Brand,
    context: Mapping[str, Any],
    bulk: bool,
) -> Rendered:
    """Render subject, HTML (sanitized, in the base layout, CSS inlined) and text, all within
    one time budget."""
    with message_budget():
        return _render_authored(subject, html, text, brand, context, bulk)


def _render_authored(
    subject: str,
    html: str,
    text: str | None,
    brand: Brand,
    context: Mapping[str, Any],
    bulk: bool,
) -> Rendered:
    ctx = dict(context)
    ctx.setdefault("org", {"name": brand.name, "address": brand.postal_address or ""})
    rendered_subject = " ".join(render_bounded(_compiled("text", subject), ctx).split())
    if not rendered_subject:
        raise TemplateProblem("The subject is empty once rendered.")
    if len(html) > MAX_BODY_BYTES or len(text or "") > MAX_BODY_BYTES:
        raise TemplateProblem(f"The body is over {MAX_BODY_BYTES // 1024} KB.")
    body = sanitize(render_bounded(_compiled("html", html), ctx))
    unsubscribe = ctx.get("unsubscribe_url") if bulk else None
    if bulk and not unsubscribe:
        raise TemplateProblem("Bulk mail needs an unsubscribe link, and none was given.")
    page = render_bounded(
        _layout.get_template("org_layout.html"),
        {
            "content": Markup(body),
            "brand": brand,
            "subject": rendered_subject,
            "unsubscribe_url": unsubscribe,
        },
    )
    page = _inliner.inline(page)
    if text and text.strip():
        footer = "\n".join(
            [
                *brand.footer_text_lines,
                *brand.address_lines,
                *([f"Unsubscribe: {unsubscribe}"] if unsubscribe else []),
            ]
        )
        plain = render_bounded(_compiled("text", text), ctx).strip() + "\n\n-- \n" + footer + "\n"
    else:
        plain = html_to_text(page)
    return Rendered(subject=rendered_subject[:MAX_SUBJECT], html=page, text=plain)
