"""Mail merge for campaigns: render a template version once with a marker in place of each
recipient's own value (name, email, their links), then make each recipient's mail by putting
their values in. Rendering a branded mail (sandbox, nh3, layout, css-inline, text part) costs
about a millisecond; putting values in costs microseconds.

It is exact or it is not used: the result is the same bytes the full render gives, else the
full render runs.
- A value is merged only where the templates print it as a bare `{{ candidate.first_name }}`
  (the Jinja AST says so); a value a template tests, filters, calls or loops over is part of the
  cache key instead, like everything shared. Macros, call/filter blocks and block sets: no merge.
- Only plain values are merged: no markup characters, quotes, controls, odd whitespace, and a
  colon only in an http(s) URL. Every stage (escaping, nh3, css-inline, the text part) leaves such
  a value as it leaves the marker; any other value gets the full render.
- Each cached render is checked once against a second render with other probe values, and
  refused where a marker sits in a style or in a URL attribute whose scheme it could decide.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from html.parser import HTMLParser
from typing import Any

from jinja2 import nodes

from app.mail.compose import MAX_SUBJECT, Brand, parse, raw_parts, render_authored, sanitize
from app.mail.render import Rendered
from app.mail.sandbox import MAX_OUTPUT_CHARS
from app.mail.text import link_labels

ROOTS = ("candidate", "invitation", "unsubscribe_url")  # the recipient's own values live here
_NONCE = "".join(secrets.choice("bcdfghjkmnpqrstvwz") for _ in range(10))
_MARK = re.compile(f"hm{_NONCE}(\\d+)x")
_UNMERGEABLE = (
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.AssignBlock,
    nodes.EvalContextModifier,
    nodes.Block,
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
)
_NOT_PLAIN = re.compile(r"[<>&\"'\x00-\x1f\x7f-\x9f\ud800-\udfff]|[^\S ]|  |^ | $|^#")
_URL = re.compile(r"https?://[A-Za-z0-9._~/?#@!$()*+,;=%:\[\]-]+\Z")
# An http(s) URL that surely parses (a host name ending in a letter, or a dotted IPv4 address
# of four decimal numbers up to 255 without leading zeros; a port under 10000; path
# characters only): nh3 keeps it as it keeps a marker
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_SURELY_VALID_URL = re.compile(
    r"https?://(?:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z](?:[a-z0-9-]*[a-z0-9])?"
    rf"|{_OCTET}(?:\.{_OCTET}){{3}})"
    r"(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~!$()*+,;=:@/-]*)?\Z"
)
_TEXT_ATTRIBUTES = {"alt", "title", "aria-label"}
_URL_ATTRIBUTES = {"href", "src", "srcset", "cite", "action", "longdesc", "background", "poster"}
MAX_VALUE = 320
ENTRIES_PER_TEMPLATE = 64
counts: Counter = Counter()  # recipients' mail rendered in full and merged, per process
GIVE_UP_MISSES = 32  # misses before a template whose key changes per recipient stops merging

Path = tuple[str, ...]


def plain(value: str) -> bool:
    """A value every stage treats as it treats the marker (see the module's docstring)."""
    if not value or len(value) > MAX_VALUE or _NOT_PLAIN.search(value):
        return False
    return ":" not in value or _URL.match(value) is not None


@dataclass(frozen=True)
class Usage:
    """How the templates use the recipient's values."""

    printed: frozenset[Path]  # only ever printed bare
    other: frozenset[Path]  # tested, filtered, called, assigned...
    whole: bool = False  # a construct that could transform printed output: never merge


def usage_of(source: str) -> Usage:
    """Read a template's AST for where the recipient's values are used."""
    ast = parse(source)
    if any(True for _ in ast.find_all(_UNMERGEABLE)):
        return Usage(frozenset(), frozenset(), whole=True)
    parents: dict[int, nodes.Node] = {}
    stack: list[nodes.Node] = [ast]
    while stack:
        node = stack.pop()
        for child in node.iter_child_nodes():
            parents[id(child)] = node
            stack.append(child)
    printed, other = set(), set()
    for name in ast.find_all(nodes.Name):
        if name.name not in ROOTS:
            continue
        if name.ctx != "load":
            other.add((name.name,))
            continue
        top, path = name, [name.name]
        parent = parents.get(id(top))
        while isinstance(parent, nodes.Getattr) and parent.node is top:
            top, path = parent, [*path, parent.attr]
            parent = parents.get(id(top))
        used = printed if isinstance(parent, nodes.Output) else other
        while len(path) > 1 and hasattr(dict, path[-1]):  # .items(), .get(): the dict is used
            path, used = path[:-1], other
        used.add(tuple(path))
    return Usage(frozenset(printed), frozenset(other))


def _related(path: Path, paths: frozenset[Path]) -> bool:
    return any(p[: len(path)] == path or path[: len(p)] == p for p in paths)


Pieces = tuple  # literal text at even positions, a value's number at odd ones


def _pieces(text: str) -> Pieces:
    """The text cut at its markers, so that a recipient's copy is one join (see _fill)."""
    parts: list = _MARK.split(text)
    parts[1::2] = [int(n) for n in parts[1::2]]
    return tuple(parts)


def _fill(pieces: Pieces, values: list[str]) -> str:
    """_put(text, values) for the text these pieces were cut from."""
    if len(pieces) == 1:
        return pieces[0]
    parts = list(pieces)
    parts[1::2] = [values[n] for n in pieces[1::2]]
    return "".join(parts)


@dataclass
class _Entry:
    """One render with markers, cut at its markers: subject (untruncated), HTML, text, the
    links' (href, label, whether they were equal) and the URL attributes with markers."""

    subject: Pieces
    html: Pieces
    text: Pieces
    links: list[tuple[Pieces, Pieces, bool]]
    urls: list[Pieces]  # as serialized


@dataclass
class _Template:
    """A template version's sources, how they use values, and its cached renders."""

    usage: Usage
    entries: OrderedDict = field(default_factory=OrderedDict)
    actions: dict = field(default_factory=dict)  # path -> _action(path), as met
    hits: int = 0
    misses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def given_up(self) -> bool:
        return self.usage.whole or (self.misses >= GIVE_UP_MISSES and self.misses > self.hits)


@lru_cache(maxsize=64)
def _template(subject: str, html: str, text: str | None) -> _Template:
    try:
        parts = [usage_of(subject), usage_of(html), usage_of(text or "")]
    except Exception:  # noqa: BLE001 - a template that doesn't parse renders (and fails) in full
        return _Template(Usage(frozenset(), frozenset(), whole=True))
    return _Template(
        Usage(
            printed=frozenset().union(*(u.printed for u in parts)) | {("unsubscribe_url",)},
            other=frozenset().union(*(u.other for u in parts)),
            whole=any(u.whole for u in parts),
        )
    )


def _action(path: Path, usage: Usage) -> str:
    """What a value at this path becomes in the marked context: its own marker ('merge',
    if it is a plain string), itself ('keep': it decides the render), or '-' (unused)."""
    if _related(path, usage.other):
        return "keep"
    if path in usage.printed:
        return "merge"
    return "keep" if _related(path, usage.printed) else "-"


def _marked(context: dict, template: _Template) -> tuple[dict, list[str]] | None:
    """The context with markers for merged values (one per distinct value), unused values
    blanked; and the values by marker. None when a value to merge is not plain."""
    values: list[str] = []
    numbers: dict[str, int] = {}
    actions = template.actions

    def walk(node: Any, path: Path) -> Any:
        if isinstance(node, dict):
            return {key: walk(value, (*path, key)) for key, value in node.items()}
        action = actions.get(path)
        if action is None:
            action = actions[path] = _action(path, template.usage)
        if action == "merge" and isinstance(node, str):
            if not plain(node):
                raise _NotPlain
            number = numbers.setdefault(node, len(values))
            if number == len(values):
                values.append(node)
            return f"hm{_NONCE}{number}x"
        return "-" if action == "-" else node

    try:
        marked = {
            key: walk(value, (key,)) if key in ROOTS else value for key, value in context.items()
        }
    except _NotPlain:
        return None
    return marked, values


class _NotPlain(Exception):
    pass


def _probe(number: int, value: str) -> str:
    """A second value for checking a cached render: as unlike the marker as a plain value gets."""
    if value.startswith(("http://", "https://")):
        return f"https://probe.example/p{number}/Ëx?y={number}"
    return f"Åsa-{number}. Núñez Ø{number}"


def _put(text: str, values: list[str]) -> str:
    return _MARK.sub(lambda m: values[int(m.group(1))], text)


def _with(node: Any, values: list[str]) -> Any:
    """The marked context with these values in place of the markers."""
    if isinstance(node, dict):
        return {key: _with(value, values) for key, value in node.items()}
    return _put(node, values) if isinstance(node, str) else node


class _Attributes(HTMLParser):
    """Markers in attributes: only in text-like ones (alt, title, aria-label) and in URLs,
    whole or after the scheme is set; the URLs are kept to be checked per recipient."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.safe = True
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            found = _MARK.search(value or "")
            if found is None or value is None:
                continue
            if name in _URL_ATTRIBUTES:
                whole = _MARK.fullmatch(value) is not None
                fixed = any(c in value[: found.start()] for c in ":/?#")  # the scheme is set
                self.safe = self.safe and (whole or fixed)
                self.urls.append(value)
            elif name not in _TEXT_ATTRIBUTES:  # class, style, id...: css-inline reads them
                self.safe = False


def _entry(
    render: Any, marked: dict, values: list[str], derived_text: bool, raw: Any
) -> _Entry | None:
    """Render with markers, then check it against a render with probe values."""
    first = render(marked)
    if len(first.subject) >= MAX_SUBJECT:
        return None  # it may have been cut
    for part in (*raw(marked), first.html, first.text):  # the bounds the full render checks
        if len(part) + len(_MARK.findall(part)) * MAX_VALUE > MAX_OUTPUT_CHARS:
            return None
    probes = [_probe(n, v) for n, v in enumerate(values)]
    second = render(_with(marked, probes))
    for one, two in ((first.subject, second.subject), (first.html, second.html)):
        if _put(one, probes) != two:
            return None
    if _put(first.text, probes) != second.text:
        return None
    attributes = _Attributes()
    attributes.feed(first.html)
    attributes.close()
    if not attributes.safe:
        return None
    links = link_labels(first.html) if derived_text else []
    links = [(h, label) for h, label in links if _MARK.search(h) or _MARK.search(label)]
    return _Entry(
        _pieces(first.subject),
        _pieces(first.html),
        _pieces(first.text),
        [(_pieces(href), _pieces(label), href == label) for href, label in links],
        [_pieces(url) for url in attributes.urls],
    )


def _kept(url: Pieces, values: list[str]) -> bool:
    """nh3 keeps this URL with the recipient's values in, as it kept it with markers (a
    marker is a relative URL; a value may be one that does not parse)."""
    filled = _fill(url, values)
    if _SURELY_VALID_URL.match(filled):  # the common case (our own links): no need to ask nh3
        return True
    return "href=" in sanitize(f'<a href="{escape(filled)}">x</a>')


def render_merged(
    *,
    subject: str,
    html: str,
    text: str | None,
    brand: Brand,
    context: dict[str, Any],
    bulk: bool,
) -> Rendered:
    """render_authored's result, through the merge where it is exact (see the docstring)."""

    def render(ctx: dict) -> Rendered:
        return render_authored(
            subject=subject, html=html, text=text, brand=brand, context=ctx, bulk=bulk
        )

    def raw(ctx: dict) -> list[str]:
        return raw_parts(subject=subject, html=html, text=text, brand=brand, context=ctx)

    def full(ctx: dict) -> Rendered:
        counts["full"] += 1
        return render(ctx)

    template = _template(subject, html, text)
    if template.given_up:
        return full(context)
    found = _marked(context, template)
    if found is None:
        return full(context)
    marked, values = found
    key = (brand, bulk, json.dumps(marked, sort_keys=True, default=str))
    with template.lock:
        entry = template.entries.get(key, False)
        if entry is not False:
            template.entries.move_to_end(key)
            template.hits += 1
    if entry is False:
        try:
            entry = _entry(render, marked, values, not (text and text.strip()), raw)
        except Exception:  # noqa: BLE001 - the full render says what is wrong, or works
            entry = None
        with template.lock:
            template.misses += 1
            template.entries[key] = entry
            if len(template.entries) > ENTRIES_PER_TEMPLATE:
                template.entries.popitem(last=False)
    if (
        entry is None
        or not all(_same(h, label, equal, values) for h, label, equal in entry.links)
        or not all(_kept(url, values) for url in entry.urls)
    ):
        return full(context)
    counts["merged"] += 1
    return Rendered(
        subject=_fill(entry.subject, values)[:MAX_SUBJECT],
        html=_fill(entry.html, values),
        text=_fill(entry.text, values),
    )


def _same(href: Pieces, label: Pieces, equal: bool, values: list[str]) -> bool:
    """The text part writes a link as 'label (url)' unless the two are equal: with values in,
    that must be decided as with markers (equal: whether they were)."""
    return (_fill(href, values) == _fill(label, values)) == equal
