"""The mail merge gives every recipient exactly the mail the full render gives them: same
subject, HTML and text, for every template shape and every kind of value; and it is used."""

from __future__ import annotations

import pytest

from app.mail import merge
from app.mail.compose import Brand, render_authored
from app.mail.sandbox import TemplateProblem
from app.models import TemplateKind
from app.templates_editor.defaults import DEFAULTS

BRAND = Brand("Acme", None, "#1F4FD1", "#EEF2FF", "Acme careers", "1 Example Street")
INVITATION = DEFAULTS[TemplateKind.INVITATION]

LINKS = '<p><a href="{{ invitation.url }}">Reply</a> · <a href="{{ unsubscribe_url }}">Stop</a></p>'
TEMPLATES = {
    "stock invitation": (INVITATION[1], INVITATION[2], None),
    "authored text part": (
        "Hello {{ candidate.full_name }}",
        "<p>Hi {{ candidate.first_name }}</p>" + LINKS,
        "Hi {{ candidate.first_name }}\n{{ invitation.url }}\n{{ unsubscribe_url }}",
    ),
    "tested": ("Hi", "{% if candidate.phone %}Call {{ candidate.phone }}{% endif %}" + LINKS, None),
    "filtered": ("{{ candidate.first_name|upper }}", "{{ candidate.full_name|truncate(8) }}", None),
    "method": ("Hi", "<p>{{ candidate.first_name.title() }} {{ candidate.first_name }}</p>", None),
    "macro": (
        "Hi",
        "{% macro m() %}{{ candidate.first_name }}{% endmacro %}<p>{{ m()|upper }}</p>",
        None,
    ),
    "filter block": ("Hi", "{% filter upper %}{{ candidate.first_name }}{% endfilter %}", None),
    "whole dict": (
        "Hi",
        "<p>{{ candidate.custom }}</p>{% for k in candidate %}{{ k }}{% endfor %}",
        None,
    ),
    "item": ("Hi", "<p>{{ candidate['first_name'] }} {{ candidate.first_name }}</p>", None),
    "style": (
        "Hi",
        '<p style="color: {{ candidate.first_name }}">x {{ candidate.last_name }}</p>',
        None,
    ),
    "scheme from a value": ("Hi", '<a href="{{ candidate.first_name }}:x">go</a>' + LINKS, None),
    "value after the scheme": (
        "Hi",
        '<a href="https://jobs.example/?n={{ candidate.first_name }}">profile</a>' + LINKS,
        None,
    ),
    "label is the link": (
        "Hi",
        '<a href="{{ candidate.custom.site }}">{{ candidate.first_name }}</a>'
        '<a href="{{ invitation.url }}">{{ invitation.url }}</a>',
        None,
    ),
    "label made of two values": (
        "Hi",
        '<a href="{{ candidate.full_name }}">'
        "{{ candidate.first_name }} {{ candidate.last_name }}</a>",
        None,
    ),
    "alt and title": (
        "{{ candidate.first_name }}  —  {{ candidate.last_name }}",
        '<img src="https://x.example/p.png" alt="{{ candidate.full_name }}"'
        ' title="Hi {{ candidate.first_name }}">',
        None,
    ),
    "dict methods": (
        "Hi",
        "{% for k, v in candidate.custom.items() %}<p>{{ k }}={{ v }}</p>{% endfor %}"
        '<p>{{ candidate.custom.values()|join(",") }} {{ candidate.first_name }}</p>',
        None,
    ),
    "class from a value": ("Hi", '<p class="{{ candidate.first_name }}">Hello</p>', None),
    "link from a value": ("Hi", '<a href="{{ candidate.custom.site }}">Portfolio</a>', None),
    "value in a host": ("Hi", '<a href="https://{{ candidate.first_name }}.example/">go</a>', None),
    "big text part": (
        "Hi",
        "<p>{{ unsubscribe_url }}</p>",
        "{% for i in range(1800) %}{{ candidate.first_name }}{% endfor %}{{ unsubscribe_url }}",
    ),
    "big stripped body": (
        "Hi",
        "{% for i in range(1800) %}<!--{{ candidate.first_name }}-->{% endfor %}",
        None,
    ),
    "long subject": ("{{ candidate.full_name }} " + "x" * 185, "<p>Hi</p>", None),
    "dates per zone": (
        "Hi",
        "<p>{{ interview.starts_at|datetime }} {{ candidate.first_name }}</p>",
        None,
    ),
    "reassigned": (
        "Hi",
        "{% set candidate = {'first_name': 'Bo'} %}{{ candidate.first_name }}",
        None,
    ),
}

VALUES = [
    "Ann",
    "Zoë",
    "José María",
    "名前",
    "Ann-Marie St. John",
    "O'Brien",
    'Say "hi"',
    "Ann  Lee",
    " Ann",
    "Ann ",
    "",
    None,
    "<b>Ann</b>",
    "A&B",
    "javascript:alert(1)",
    "https://evil.example/x",
    "https",
    "#top",
    "x" * 400,
    "Li\u2028Wei",
    "Ann\u00a0Lee",
    "Ann\tLee",
    "hm{{ x }}",
    "ann@example.com",
    "muted",
    "button",
    "https://ada.example.com:8o8o/",
    "https://ada.example:99999/",
    "https://[oops",
    "https://ada%.example/",
    "https://1.2.3.999/",
    "http://127.0.0.1:5000/i/tok-Ab_9",
    "http://10.0.0.255/",
    "http://01.2.3.4/",
    "http://1.2.3/",
    "ada%",
    "y" * 300,
]


def context(value: str | None, number: int, zone: str = "Europe/London") -> dict:
    """One recipient's full context, with `value` as their first name (and in other places)."""
    last = "Lee" if number % 2 else value
    return {
        "candidate": {
            "first_name": value,
            "last_name": last,
            "full_name": " ".join(p for p in (value, last) if p) or "ann@example.com",
            "email": f"c{number}@example.com",
            "phone": "" if number % 3 else f"+44 20 7946 {number:04d}",
            "custom": {"site": value if number % 2 else f"https://c{number}.example/me"},
        },
        "invitation": {
            "url": f"https://herald.example/i/tok{number}-Ab_9",
            "expires_at": "2026-12-24T17:00:00+00:00",
        },
        "unsubscribe_url": f"https://herald.example/u/eyJ{number}.sig-_x",
        "recipient_timezone": zone,
        "job": {
            "title": "Data Engineer",
            "interview_format": "Video call",
            "duration_minutes": 45,
            "location": "London",
        },
        "interview": {"starts_at": "2026-12-10T13:00:00+00:00", "ends_at": "", "location": "Zoom"},
        "recruiter": {"name": "Rita", "email": "rita@example.com"},
        "org": {"name": "Acme", "address": "1 Example Street"},
    }


def both(template: tuple, ctx: dict) -> tuple:
    """(merged, full) results, or the problem each raised."""
    subject, html, text = template
    out = []
    for render in (merge.render_merged, render_authored):
        try:
            out.append(
                render(subject=subject, html=html, text=text, brand=BRAND, context=ctx, bulk=True)
            )
        except TemplateProblem as exc:
            out.append(str(exc))
    return tuple(out)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_merged_mail_is_the_full_render_for_every_value(name):
    template = TEMPLATES[name]
    for number, value in enumerate(VALUES * 2):  # twice: the second pass comes from the cache
        zone = ("Europe/London", "Asia/Kathmandu")[number % 2]
        merged, full = both(template, context(value, number, zone))
        assert merged == full, (name, value)


def test_campaign_of_plain_names_is_merged_from_one_render():
    merge.counts.clear()
    names = ["Ann", "Zoë", "José María", "名前", "Ann-Marie St. John", "Bo"] * 5
    for number, name in enumerate(names):
        merged, full = both(TEMPLATES["stock invitation"], context(name, number))
        assert merged == full
        assert f"Hi {name}," in merged.html and merged.html.count("tok") == 1
    assert merge.counts["merged"] == len(names)
    assert merge.counts["full"] == 0


def test_a_template_that_tests_each_recipients_value_stops_trying_to_merge():
    """Its cache key changes per recipient: after a few misses it renders in full at once
    (a miss costs two renders more than the full one)."""
    merge.counts.clear()
    names = [f"Name{number}" for number in range(merge.GIVE_UP_MISSES + 10)]
    for number, name in enumerate(names):
        merged, full = both(TEMPLATES["filtered"], context(name, number))
        assert merged == full and merged.subject == name.upper()
    assert merge.counts["full"] >= 10
