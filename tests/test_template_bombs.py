"""Template bombs (tests/bombs.py) are refused with a clear message, within 64 MB and 2.5 s;
a message's parts share one time budget; ordinary templates render as before."""

from __future__ import annotations

import re
import statistics
import time
import tracemalloc

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select

from app.extensions import db
from app.mail import catalogue, sandbox
from app.mail.compose import Brand, render_authored
from app.mail.filters import filter_date, filter_datetime, filter_link, filter_time
from app.mail.sandbox import TemplateProblem
from app.models import EmailTemplate, Role, TemplateKind
from app.templates_editor.defaults import DEFAULTS
from tests.bombs import BOMBS, CALLABLES

MAX_MB = 64
# The render budget is 2 s (TEMPLATE_RENDER_SECONDS); a bomb must stop near it, not run on.
# bench/template_bombs.py holds the tight figure (≤ 2.5 s) on a quiet machine; here the margin
# lets a machine busy with other work still tell a bounded render from a runaway one.
MAX_SECONDS = 4.0
CLEAR = re.compile(
    r"too much output|too long|too large|too deeply|loops too many times|can be at most|"
    r"can.t use|adds numbers only|takes its width from a value|must be at least|isn.t available|"
    r"too complex|nests too deeply"
)
BRAND = Brand("Acme", None, "#3A3FD8", "#F2F3FF", None, "1 Street")
HTML = sandbox.make_env()
TEXT = sandbox.make_env(autoescape=False)


def _render(source: str, env: sandbox.HeraldSandbox = HTML) -> str:
    with sandbox.message_budget():
        return sandbox.render_bounded(
            sandbox.compile_source(env, source), catalogue.sample_context()
        )


def _refused_cheaply(source: str, env: sandbox.HeraldSandbox) -> str:
    """The problem's text; asserts the render's memory peak and time."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateProblem) as problem:
            _render(source, env)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < MAX_MB, f"{peak:.0f} MB"
    assert seconds < MAX_SECONDS, f"{seconds:.2f} s"
    return str(problem.value)


@pytest.mark.parametrize("source", [s for _, s in BOMBS], ids=[n for n, _ in BOMBS])
def test_a_template_bomb_is_refused_with_a_clear_message(source):
    message = _refused_cheaply(source, HTML)
    assert CLEAR.search(message) and "Error" not in message, message


_PLAIN_TEXT = ["replace", "join_range", "format_filter", "concat_accumulate", "str_replace"]
_PLAIN_TEXT += ["filter_block", "nested_loops_set_block", "macro_doubling", "tojson_refs"]


@pytest.mark.parametrize("name", _PLAIN_TEXT)
def test_a_template_bomb_is_refused_in_plain_text_too(name):
    message = _refused_cheaply(dict(BOMBS)[name], TEXT)
    assert CLEAR.search(message), message


@pytest.mark.parametrize("source", [s for _, s in CALLABLES], ids=[n for n, _ in CALLABLES])
def test_printing_a_function_is_refused_not_shown_with_its_address(source):
    for env in (HTML, TEXT):
        with pytest.raises(TemplateProblem, match="prints a function .* call it with"):
            _render(source, env)


@pytest.mark.parametrize(
    "source",
    [
        "{{ cycler(1, 2) }}",
        "{{ joiner() }}",
        "{{ (1, 2)|map('string') }}",
        "{{ [1, 2]|reverse }}",
        "{{ namespace() if false else lipsum.__class__ }}",
    ],
)
def test_printing_an_object_is_refused_not_shown_with_its_address(source):
    for env in (HTML, TEXT):
        try:
            shown = _render(source, env)
        except TemplateProblem as problem:
            assert "0x" not in str(problem)
        else:
            assert " at 0x" not in shown and "object" not in shown, shown


def test_the_parts_of_one_message_share_one_time_budget():
    """Each part alone renders within the limit; the three together do not."""
    slow = "{% for a in range(300) %}{% for b in range(1000) %}{% endfor %}{% endfor %}ok"
    started = time.perf_counter()
    _render(slow)
    one_part = time.perf_counter() - started
    with pytest.raises(TemplateProblem, match="took too long"):
        with sandbox.message_budget(seconds=one_part * 2):
            for env in (TEXT, HTML, TEXT):
                sandbox.render_bounded(sandbox.compile_source(env, slow), {})
    with sandbox.message_budget(seconds=one_part * 2):
        assert sandbox.render_bounded(sandbox.compile_source(HTML, slow), {}) == "ok"


def test_an_authored_message_is_one_budget():
    """render_authored's subject, HTML and text count against one budget: each part loops
    700,000 times, well within a render's 2,000,000 alone, but not the three together."""
    slow = "{% for a in range(700) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
    parts = {"subject": "Hi" + slow, "html": "<p>x</p>" + slow, "text": "x" + slow}
    for name, source in parts.items():
        alone = {"subject": "Hi", "html": "<p>x</p>", "text": "x"} | {name: source}
        render_authored(**alone, brand=BRAND, context=catalogue.sample_context(), bulk=False)
    started = time.perf_counter()
    with pytest.raises(TemplateProblem, match="loops too many times|took too long"):
        render_authored(**parts, brand=BRAND, context=catalogue.sample_context(), bulk=False)
    assert time.perf_counter() - started < MAX_SECONDS


def test_the_default_templates_render_as_before():
    context = catalogue.sample_context()
    for _name, subject, html in DEFAULTS.values():
        rendered = render_authored(
            subject=subject, html=html, text=None, brand=BRAND, context=context, bulk=True
        )
        assert rendered.subject and "{{" not in rendered.html and "Acme" in rendered.html


@pytest.mark.parametrize(
    "source, expected",
    [
        ("{% for s in STEPS %}{{ loop.index }}. {{ s|title }}; {% endfor %}", "1. Intro; 2. Tech;"),
        ("{{ STEPS|join(', ') }}", "intro, tech, team"),
        ("{{ STEPS|map('upper')|sort|join('/') }}", "INTRO/TEAM/TECH"),
        ("{{ (STEPS|first) ~ '-' ~ STEPS|length }}", "intro-3"),
        ("{{ '%s has %d steps'|format('Acme', 3) }}", "Acme has 3 steps"),
        ("{{ '{} at {:>5}'.format('Acme', 'x') }}", "Acme at     x"),
        ("{{ 'a-b'.replace('-', '+') }} {{ 'x'.ljust(3, '.') }}", "a+b x.."),
        ("{{ STEPS|tojson }}", '["intro", "tech", "team"]'),
        ("{{ ('ab' * 3)|center(10) }}|{{ 'l1\nl2'|indent(2) }}", "  ababab  |l1\n  l2"),
        (
            "{% set x %}{% for s in STEPS %}<{{ s }}>{% endfor %}{% endset %}{{ x }}",
            "<intro><tech><team>",
        ),
        (
            "{% macro b(t) %}[{{ t }}]{% endmacro %}{{ b('x') }}{{ STEPS|batch(2)|list|length }}",
            "[x]2",
        ),
        ("{{ {'b': 1, 'a': 2}|dictsort|first|first }}{{ [3, 1]|sum }}", "a4"),
        (
            "{{ 'tech' in STEPS }}{{ STEPS|select('eq', 'team')|first }}{{ 1 < 2 < 3 }}"
            "{{ 3 < 2 < undefined_name }}{{ STEPS.index('tech') }}{{ 'x' not in STEPS }}",
            "TrueteamTrueFalse1True",
        ),
        (
            "{{ ['b', 'A']|sort|join }}{{ ['a', 'A']|unique|list|length }}{{ ['b', 'A']|max }}",
            "Ab1b",
        ),
    ],
)
def test_ordinary_templates_render_as_before(source, expected):
    out = _render(source.replace("STEPS", "['intro', 'tech', 'team']"))
    assert expected in out


def test_ordinary_templates_are_not_slowed_noticeably():
    """The default templates against Jinja's own sandbox without Herald's bounds."""
    context = catalogue.sample_context()
    plain = ImmutableSandboxedEnvironment(autoescape=True)
    plain.filters.update(datetime=filter_datetime, date=filter_date, time=filter_time)
    plain.filters.update(link=filter_link)
    sources = [html for _, _, html in DEFAULTS.values()]
    ours = [sandbox.compile_source(HTML, s) for s in sources]
    theirs = [plain.from_string(s) for s in sources]

    def median_ms(render) -> float:
        runs = []
        for _ in range(30):
            started = time.perf_counter()
            render()
            runs.append((time.perf_counter() - started) * 1000)
        return statistics.median(runs)

    bounded = median_ms(lambda: [_render_compiled(t, context) for t in ours])
    unbounded = median_ms(lambda: ["".join(t.generate(context)) for t in theirs])
    assert bounded < unbounded * 3 + 1, (bounded, unbounded)


def _render_compiled(template, context):
    with sandbox.message_budget():
        return sandbox.render_bounded(template, context)


def test_a_problem_quotes_only_the_start_of_a_big_value():
    with pytest.raises(TemplateProblem) as problem:
        _render("{% set s = 'x' * 999999 %}{{ {}[s] }}")
    assert "Unknown variable" in str(problem.value) and len(str(problem.value)) < 400


@pytest.fixture
def admin(factories, login_as):
    org = factories.make_org("Acme")
    from app.templates_editor.services import create_defaults

    create_defaults(org, None)
    db.session.commit()
    login_as(factories.make_user(org, Role.ADMIN, email="ada@example.com"), org)
    return org


@pytest.mark.parametrize("name", ["replace", "indent", "slice_accumulate"])
def test_the_editor_refuses_a_bomb_clearly_and_cheaply(admin, post, name):
    """Preview and save, through HTTP: a clear message, no 500, within 64 MB and 2.5 s."""
    template = db.session.scalars(
        select(EmailTemplate).where(
            EmailTemplate.org_id == admin.id, EmailTemplate.kind == TemplateKind.INVITATION
        )
    ).first()
    version = template.current_version
    form = {"name": template.name, "subject": version.subject, "html": dict(BOMBS)[name]}
    tracemalloc.start()
    started = time.perf_counter()
    try:
        preview = post(f"/templates/{template.id}/preview", form | {"text": ""})
        saved = post(f"/templates/{template.id}", form | {"text": ""})
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert preview.status_code == 200 and preview.headers["HX-Retarget"] == "#preview-error"
    assert "too much output" in preview.get_data(as_text=True)
    assert saved.status_code == 400 and "too much output" in saved.get_data(as_text=True)
    assert peak < MAX_MB and seconds < 2 * MAX_SECONDS  # two requests
