"""Branded templates: safe rendering, validation, live preview, versions, branding, test send."""

from __future__ import annotations

import io
import re
import struct
import time
import zlib

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mail import catalogue
from app.mail.compose import Brand, render_authored
from app.mail.sandbox import TemplateProblem
from app.models import EmailTemplate, Message, Role, TemplateKind, TemplateVersion

SSTI = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ config }}",
    "{{ config.SECRET_KEY }}",
    "{{ self.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ request }}",
    "{% import os %}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
]
LEAKS = ["SECRET", "test-secret-key", "<class", "subclasses", "os.", "uid="]


@pytest.fixture
def admin(factories, login_as):
    org = factories.make_org("Acme")
    from app.templates_editor.services import create_defaults

    create_defaults(org, None)
    db.session.commit()
    user = factories.make_user(org, Role.ADMIN, email="ada@example.com", name="Ada")
    login_as(user, org)
    return org


def _template(org, kind=TemplateKind.INVITATION) -> EmailTemplate:
    return db.session.scalars(
        select(EmailTemplate).where(EmailTemplate.org_id == org.id, EmailTemplate.kind == kind)
    ).first()


def _form(template: EmailTemplate, **changes: str) -> dict:
    version = template.current_version
    data = {"name": template.name, "subject": version.subject, "html": version.html, "text": ""}
    return data | changes


@pytest.mark.parametrize("payload", SSTI)
def test_injection_payloads_are_refused_clearly(admin, post, payload):
    template = _template(admin)
    preview = post(f"/templates/{template.id}/preview", _form(template, html=payload))
    assert preview.status_code == 200 and preview.headers["HX-Retarget"] == "#preview-error"
    text = preview.get_data(as_text=True)
    assert "can't be rendered" in text
    assert not [leak for leak in LEAKS if leak in text]
    saved = post(f"/templates/{template.id}", _form(template, html=payload))
    assert saved.status_code == 400
    body = saved.get_data(as_text=True)
    assert 'class="error"' in body and "test-secret-key" not in body
    assert (
        len(
            db.session.scalars(
                select(TemplateVersion).where(TemplateVersion.template_id == template.id)
            ).all()
        )
        == 1
    )


def test_candidate_values_render_escaped(admin, post):
    template = _template(admin)
    response = post(
        f"/templates/{template.id}/preview",
        {**_form(template), "sample-candidate.first_name": "<script>x()</script>"},
    )
    text = response.get_data(as_text=True)
    assert "&lt;script&gt;" in text.replace("&amp;", "&") and "<script>x()" not in text


@pytest.mark.parametrize(
    "source, message",
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "range is too long"),
        ("{{ 'x' * 10**9 }}", "too much output"),
        (
            "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
            "loops too many times|took too long",  # whichever bound a loaded machine hits first
        ),
        ("{% for a in range(99999) %}{{ range(99999)|sum }}{% endfor %}", "took too long"),
        ("{{ '%0999999999d'|format(1) }}", "width or length .* too large"),
        ("{{ '{:>999999999}'.format(1) }}", "width or length .* too large"),
        ("{{ '%*d' % (999999999, 1) }}", "width or length .* too large"),
        ("{{ 'x'|center(10**9) }}", "width or length .* too large"),
        ("{{ (((10**100)**100)**100)**100 }}", "too large"),
        ("{{ ([['x']*99999]*99999)|sum(start=[]) }}", "too long|numbers only"),
        (
            "{% set ns = namespace(s='x'*99999) %}{% for i in range(30) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "too much output",
        ),
        ("{{ lipsum(99999) }}", "Unknown variable 'lipsum'"),
        ("{% include 'org_layout.html' %}", "isn't available"),
        ("{% for i in range(99999) %}{{ 'y' * 9999 }}{% endfor %}", "too much output"),
    ],
)
def test_render_is_bounded_in_time_and_size(source, message):
    brand = Brand("Acme", None, "#3A3FD8", "#F2F3FF", None, "1 Street")
    started = time.monotonic()
    with pytest.raises(TemplateProblem, match=message):
        render_authored(
            subject="s",
            html=source,
            text=None,
            brand=brand,
            context=catalogue.sample_context(),
            bulk=True,
        )
    assert time.monotonic() - started < 5


def test_authored_html_is_sanitized_and_css_inlined():
    brand = Brand("Acme", None, "#3A3FD8", "#F2F3FF", None, "1 Street")
    html = (
        '<style>a { display: none }</style><p class="muted">Hello</p>'
        '<img src="x" onerror="alert(1)" alt="pic"><a href="javascript:alert(2)">x</a>'
        '<script>alert(3)</script><a class="button" href="{{ invitation.url }}">Go</a>'
    )
    rendered = render_authored(
        subject="Hi",
        html=html,
        text=None,
        brand=brand,
        context=catalogue.sample_context(),
        bulk=True,
    )
    assert "onerror" not in rendered.html and "javascript:" not in rendered.html
    assert "alert(3)" not in rendered.html and "<style" not in rendered.html.split("</head>")[1]
    assert "display: none" not in rendered.html  # authored CSS cannot hide the footer
    assert 'class="muted" style="color: #5b6178' in rendered.html  # the layout's classes apply
    details = render_authored(
        subject="Hi",
        html='<table class="details"><tr><td>https://meet.example.com/' + "x" * 60 + "</td></tr>",
        text=None,
        brand=brand,
        context=catalogue.sample_context(),
        bulk=False,
    )
    assert (
        "overflow-wrap: anywhere" in details.html.split("meet.example.com")[0].rsplit("<td", 1)[1]
    )
    assert "Go (https://herald.example.com/i/sample-token)" in rendered.text
    assert "Unsubscribe (https://herald.example.com/u/sample)" in rendered.text
    assert "1 Street" in rendered.text


def test_dates_print_in_the_recipients_zone():
    brand = Brand("Acme", None, "#3A3FD8", "#F2F3FF", None, None)
    context = catalogue.sample_context({"interview.starts_at": "2026-03-03T13:00:00+00:00"})
    context["recipient_timezone"] = "Europe/Paris"
    rendered = render_authored(
        subject="s",
        html="{{ interview.starts_at|datetime }}",
        text=None,
        brand=brand,
        context=context,
        bulk=False,
    )
    assert "Tuesday 3 March 2026, 14:00 CET" in rendered.html
    context["recipient_timezone"] = "America/New_York"
    rendered = render_authored(
        subject="{{ interview.starts_at|time }}",
        html="x",
        text=None,
        brand=brand,
        context=context,
        bulk=False,
    )
    assert rendered.subject == "08:00 EST"


def test_validation_on_save_is_inline_and_keeps_the_edit(admin, post):
    template = _template(admin)
    cases = [
        ({"html": "<p>ok</p>\n<p>{{ candidate.first_name </p>"}, "Line 2, column"),
        (
            {"html": "<p>{{ candidate.shoe_size }}</p>"},
            "Unknown variable &#39;candidate.shoe_size&#39;",
        ),
        ({"html": "<p>{{ salary }}</p>"}, "Unknown variable &#39;salary&#39;"),
        ({"subject": ""}, "The subject is empty."),
        ({"subject": "x" * 201}, "over 200 characters"),
        ({"html": "<p>" + "x" * (500 * 1024) + "</p>"}, "over 500 KB"),
        ({"name": "n" * 121}, "A name can be at most 120 characters."),
    ]
    for change, message in cases:
        response = post(f"/templates/{template.id}", _form(template, **change))
        page = response.get_data(as_text=True)
        assert response.status_code == 400, change
        assert message in page, change
        for value in change.values():
            if len(value) < 1000:
                assert value.replace("<", "&lt;").replace(">", "&gt;") in page, "edit lost"
    assert template.current_version.number == 1
    name = post(f"/templates/{template.id}", _form(template, name="n" * 121)).text
    assert 'aria-describedby="name-error"' in name and 'id="name-error"' in name


def test_bulk_kind_must_carry_the_unsubscribe_link(admin, monkeypatch):
    from app.templates_editor import services

    real = services.render

    def without_link(*args, **kwargs):
        rendered = real(*args, **kwargs)
        return type(rendered)(
            rendered.subject, rendered.html.replace("/u/sample", "/x"), rendered.text
        )

    monkeypatch.setattr(services, "render", without_link)
    problems = services.validate(admin, TemplateKind.REMINDER, "s", "<p>x</p>", None)
    assert any("unsubscribe" in p.message for p in problems)
    assert services.validate(admin, TemplateKind.CANCELLED, "s", "<p>x</p>", None) == []


def test_versions_restore_and_diff(admin, client, post):
    template = _template(admin)
    assert (
        post(f"/templates/{template.id}", _form(template, html="<p>Second</p>")).status_code == 302
    )
    assert (
        post(
            f"/templates/{template.id}", _form(template, html="<p>Second</p>", name="Renamed")
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert template.current_version.number == 2 and template.name == "Renamed"  # no empty version
    history = client.get(f"/templates/{template.id}/history?a=1&b=2").get_data(as_text=True)
    assert 'class="diff-line diff-add">+ &lt;p&gt;Second&lt;/p&gt;' in history
    assert "@@" not in history and "HTML body, from line " in history  # said, not coded
    assert post(f"/templates/{template.id}/restore", {"number": 1}).status_code == 302
    db.session.expire_all()
    current = template.current_version
    assert current.number == 3 and current.note == "Restored from version 1"
    assert "Thank you for applying" in current.html
    assert client.get(f"/templates/{template.id}/history?a=1&b=99").status_code == 404


def test_queued_mail_keeps_its_pinned_version(admin, post, sink, run_worker):
    template = _template(admin, TemplateKind.CANCELLED)
    assert post(f"/templates/{template.id}/test").status_code == 302
    post(f"/templates/{template.id}", _form(template, html="<p>Edited after queueing</p>"))
    run_worker()
    [mail] = sink.messages
    assert b"has been cancelled" in mail["data"] and b"Edited after queueing" not in mail["data"]
    message = db.session.scalars(select(Message)).one()
    assert db.session.get(TemplateVersion, message.template_version_id).number == 1


def test_delete_is_refused_while_mail_is_queued(admin, client, post, run_worker, sink):
    template = _template(admin, TemplateKind.FOLLOW_UP)
    post(f"/templates/{template.id}/test")
    response = post(f"/templates/{template.id}/delete", follow_redirects=True)
    assert "is used by 1 scheduled or queued email" in response.get_data(as_text=True)
    run_worker()
    response = post(f"/templates/{template.id}/delete")
    assert response.status_code == 302
    assert client.get(f"/templates/{template.id}").status_code == 404
    assert template.name not in client.get("/templates/").get_data(as_text=True)


def test_duplicate_and_default(admin, client, post):
    template = _template(admin, TemplateKind.REMINDER)
    response = post(f"/templates/{template.id}/duplicate")
    copy = db.session.scalars(
        select(EmailTemplate).where(EmailTemplate.name == f"Copy of {template.name}")
    ).one()
    assert response.location.endswith(f"/templates/{copy.id}") and not copy.is_default
    post(f"/templates/{copy.id}/default")
    db.session.expire_all()
    assert copy.is_default and not template.is_default


def test_new_org_gets_one_default_template_per_kind(ctx, client, post):
    post(
        "/signup",
        {
            "org_name": "Newco",
            "name": "Nia",
            "email": "nia@example.com",
            "password": "a-long-password",
        },
    )
    kinds = sorted(t.kind for t in db.session.scalars(select(EmailTemplate)))
    assert kinds == sorted(k.value for k in TemplateKind)
    page = client.get("/templates/").get_data(as_text=True)
    assert page.count("Default</span>") == len(TemplateKind)


def test_test_send_uses_branding_and_arrives(admin, post, sink, run_worker):
    template = _template(admin)
    response = post(
        "/settings/branding",
        {
            "primary_color": "#0B6E4F",
            "accent_color": "#EEF7F2",
            "sender_name": "Acme Talent",
            "sender_email": "talent@acme.example.com",
            "reply_to": "jobs@acme.example.com",
            "footer_text": "Thanks!",
            "postal_address": "1 Market St, Springfield",
        },
    )
    assert response.status_code == 302
    post(f"/templates/{template.id}/test")
    run_worker()
    [mail] = sink.messages
    raw = mail["data"].decode()
    assert "From: Acme Talent <talent@acme.example.com>" in raw
    assert "Reply-To: jobs@acme.example.com" in raw
    assert "#0B6E4F" in raw and "1 Market St, Springfield" in raw
    assert "Interview invitation: Senior Data Engineer at Acme" in raw


def _parts(raw: bytes) -> tuple[str, str, str]:
    """Subject, HTML and text of a mail as the sink received it."""
    from email import message_from_bytes, policy

    mail = message_from_bytes(raw, policy=policy.default)
    parts = {p.get_content_type(): p for p in mail.walk()}
    text = parts["text/plain"].get_content().replace("\r\n", "\n")
    return mail["Subject"], parts["text/html"].get_content(), text


def test_footer_keeps_the_address_lines_and_names_the_org_once(admin, post, sink, run_worker):
    address = "Acme Talent Ltd\n120 Harbour Street, Suite 4\r\nBoston, MA <02110>"
    note = "You hear from us about your application.\nQuestions? Reply to this email."
    post("/settings/branding", {**BRANDING, "postal_address": address, "footer_text": note})
    template = _template(admin)
    post(f"/templates/{template.id}/test")
    run_worker()
    _, html, text = _parts(sink.messages[0]["data"])
    lines = "Acme Talent Ltd<br>120 Harbour Street, Suite 4<br>Boston, MA &lt;02110&gt;</p>"
    assert lines in html and "Acme ·" not in html  # escaped, one line each, the name once
    assert "Acme Talent Ltd\n120 Harbour Street, Suite 4\nBoston, MA <02110>" in text
    assert "your application.<br>Questions? Reply to this email.</p>" in html
    assert "about your application.\nQuestions? Reply to this email." in text
    brand = Brand(
        "Acme", None, "#3A3FD8", "#F2F3FF", "Thanks!\nThe team", "1 Market St\nSpringfield"
    )
    authored = render_authored(
        subject="Hi", html="<p>Hi</p>", text="Hi", brand=brand, context={}, bulk=False
    )
    assert "Acme<br>1 Market St<br>Springfield</p>" in authored.html
    assert authored.text.endswith("-- \nThanks!\nThe team\n1 Market St\nSpringfield\n")


def test_a_test_send_is_marked_and_left_out_of_the_figures(admin, client, post, sink, run_worker):
    from app.tracking import rollups

    template = _template(admin)
    post(f"/templates/{template.id}/test")
    run_worker()
    subject, _, _ = _parts(sink.messages[0]["data"])
    assert subject == "[Test] Interview invitation: Senior Data Engineer at Acme"
    rollups.flush()
    db.session.commit()
    html = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r'id="kpi-sent">([^<]+)<', html).group(1) == "0"


def _png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


BRANDING = {"primary_color": "#3A3FD8", "accent_color": "#F2F3FF", "postal_address": "1 St"}


def test_logo_upload_is_validated_stored_and_cached(admin, client, post):
    bad = post(
        "/settings/branding",
        {**BRANDING, "logo": (io.BytesIO(b"GIF89a..."), "x.gif")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400 and "PNG, JPEG or SVG" in bad.get_data(as_text=True)
    big = post(
        "/settings/branding",
        {**BRANDING, "logo": (io.BytesIO(_png() + b"\0" * 600_000), "big.png")},
        content_type="multipart/form-data",
    )
    assert big.status_code == 400 and "The logo is over 512 KB." in big.get_data(as_text=True)
    assert big.text.count("Emails show it 40 px high and at most 220 px wide") == 2  # help, error
    ok = post(
        "/settings/branding",
        {**BRANDING, "logo": (io.BytesIO(_png()), "logo.png")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302
    db.session.expire_all()
    served = client.get(f"/brand/{admin.logo_key}")
    assert served.status_code == 200 and served.data == _png()
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/brand/../../etc/passwd").status_code == 404
    template = _template(admin)
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert f"/brand/{admin.logo_key}" in page  # the preview shows the new logo at once


def test_svg_logo_is_sanitized(admin, client, post):
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)">'
        b'<script>alert(2)</script><rect width="10" height="10" fill="#f00"/></svg>'
    )
    post(
        "/settings/branding",
        {**BRANDING, "logo": (io.BytesIO(svg), "logo.svg")},
        content_type="multipart/form-data",
    )
    db.session.expire_all()
    served = client.get(f"/brand/{admin.logo_key}")
    assert served.mimetype == "image/svg+xml"
    assert b"<rect" in served.data and b"alert" not in served.data and b"onload" not in served.data


def test_branding_bad_values_change_nothing(admin, post):
    response = post("/settings/branding", {**BRANDING, "primary_color": "red", "sender_email": "x"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "correct the fields marked below" in page
    assert 'id="primary_color-error" role="alert">Colours must look like #1A2B3C.' in page
    assert 'id="sender_email-error"' in page  # both at once, each at its field
    response = post("/settings/branding", {**BRANDING, "sender_email": "not-an-email"})
    assert response.status_code == 400 and "Sender address" in response.get_data(as_text=True)
    db.session.expire_all()
    assert admin.primary_color == "#3A3FD8" and admin.sender_email is None


def test_branding_previews_an_invitation_as_typed_without_saving(admin, client, post):
    page = client.get("/settings/branding")
    assert 'id="branding-preview"' in page.text and "srcdoc=" in page.text
    assert "'unsafe-inline'" in page.headers["Content-Security-Policy"]  # the mail's own styles
    typed = {**BRANDING, "primary_color": "#00AA55", "footer_text": "Typed footer, not saved"}
    part = post("/settings/branding/preview", typed, headers={"HX-Request": "true"}).text
    assert part.startswith('<div id="branding-preview"') and "<html" not in part.split("srcdoc")[0]
    assert "#00AA55" in part and "Typed footer, not saved" in part
    bad = post("/settings/branding/preview", {**typed, "primary_color": "red"}).text
    assert "red;" not in bad and "#3A3FD8" in bad  # an unreadable colour: the saved one
    hostile = post(
        "/settings/branding/preview", {**BRANDING, "footer_text": "</p><script>alert(1)</script>"}
    ).text
    assert "<script>alert" not in hostile and "&lt;script&gt;" in hostile.replace("&amp;", "&")
    assert "Typed footer" not in post("/settings/branding/preview", BRANDING).text
    db.session.expire_all()
    assert admin.primary_color == "#3A3FD8" and admin.footer_text != typed["footer_text"]


def test_recruiter_can_preview_read_only_but_not_edit(factories, client, login_as, post):
    org = factories.make_org()
    template = factories.make_email_template(org)
    login_as(factories.make_user(org, Role.RECRUITER), org)
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert "<fieldset disabled>" in page and "Save version" not in page
    assert post(f"/templates/{template.id}", _form(template)).status_code == 403
    assert post(f"/templates/{template.id}/test").status_code == 302
    assert post("/settings/branding/preview", {"primary_color": "#000000"}).status_code == 403


def test_large_templates_compile_in_segments_with_the_same_result():
    from app.mail.sandbox import split_segments

    block = (
        "<p>{{ candidate.first_name }} {% if job.title %}{{ job.title }}{% endif %}</p>\n"
        "{% for s in ['a', 'b'] %}\n<i>{{ loop.index }}{{ s }}</i>\n{% endfor %}\n"
    ) * 80
    assert split_segments(block) and len(split_segments(block)) > 2
    assert "".join(split_segments(block)) == block
    assert split_segments("{% set x = 1 %}\n" + block) is None  # shared state: compile whole
    assert split_segments(block + "{% for x in y %}") is None  # unbalanced: compile whole
    from app.mail import compose

    brand = Brand("Acme", None, "#3A3FD8", "#F2F3FF", None, None)
    context = catalogue.sample_context()
    segments = compose._compiled("html", block)
    assert isinstance(segments, list)
    whole = compose._compiled_one("html", block)
    assert compose.render_bounded(segments, context) == compose.render_bounded(whole, context)
    broken = block + "<p>{{ job.title </p>\n"
    with pytest.raises(TemplateProblem) as error:
        render_authored(
            subject="s", html=broken, text=None, brand=brand, context=context, bulk=False
        )
    assert error.value.line == block.count("\n") + 1  # located in the whole source


def test_sample_data_cannot_smuggle_links_or_crash(admin, post, sink, run_worker):
    template = _template(admin)
    forged = {
        "sample-_links.unsubscribe_url.purpose": "verify-email",
        "sample-_links.unsubscribe_url.path": "/verify/__token__",
        "sample-unsubscribe_url": "javascript:alert(1)",
        "sample-candidate": "x",
        "sample-candidate.first_name.x": "x",
        "sample-candidate.first_name": "Zed",
    }
    preview = post(f"/templates/{template.id}/preview", {**_form(template), **forged})
    assert preview.status_code == 200 and "Zed" in preview.get_data(as_text=True)
    assert post(f"/templates/{template.id}/test", forged).status_code == 302
    run_worker()
    raw = sink.messages[0]["data"]
    assert b"/verify/" not in raw and b"javascript:" not in raw


def test_bad_inputs_on_template_routes_are_4xx(admin, post, client):
    template = _template(admin)
    typo = post(f"/templates/{template.id}", _form(template, html="{{ job.title|datetiem }}"))
    assert typo.status_code == 400 and "datetiem" in typo.get_data(as_text=True)
    assert post(f"/templates/{template.id}/restore", {"number": 99999999999999}).status_code == 404
    colour = post("/settings/branding", {**BRANDING, "primary_color": "#123456\n"})
    assert colour.status_code == 400
    post("/templates/defaults")
    assert len(db.session.scalars(select(EmailTemplate)).all()) == len(TemplateKind)


def test_versions_cannot_be_changed_in_place(admin):
    version = _template(admin).current_version
    version.html = "<p>rewritten history</p>"
    with pytest.raises(RuntimeError, match="immutable"):
        db.session.commit()
    db.session.rollback()


def test_svg_keeps_gradients(admin, client, post):
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs>'
        b'<linearGradient id="g"><stop offset="0" stop-color="#f00"/></linearGradient></defs>'
        b'<rect width="10" height="10" fill="url(#g)"/></svg>'
    )
    post(
        "/settings/branding",
        {**BRANDING, "logo": (io.BytesIO(svg), "logo.svg")},
        content_type="multipart/form-data",
    )
    db.session.expire_all()
    assert b"linearGradient" in client.get(f"/brand/{admin.logo_key}").data


def test_preview_as_a_real_candidate_of_the_org(admin, factories, post):
    template = _template(admin)
    person = factories.make_candidate(admin, email="zoe@example.com", first_name="Zoé")
    person.custom = {"portfolio": "https://zoe.example"}
    db.session.commit()
    other = factories.make_candidate(factories.make_org("Other"), first_name="Intruder")
    html = "<p>{{ candidate.first_name }} {{ candidate.custom.portfolio }}</p>"
    mine = post(
        f"/templates/{template.id}/preview",
        {**_form(template, html=html), "sample-candidate_id": person.id},
    )
    assert "Zoé https://zoe.example" in mine.get_data(as_text=True)
    theirs = post(
        f"/templates/{template.id}/preview",
        {**_form(template, html=html), "sample-candidate_id": other.id},
    )
    assert "Intruder" not in theirs.get_data(as_text=True)  # another org's candidate: ignored


@pytest.mark.parametrize(
    ("location", "linked"),
    [("https://meet.example.com/acme-42", True), ("Room 4, 2nd floor", False), ("", False)],
)
def test_the_stock_invitation_links_a_video_call_address(ctx, factories, location, linked):
    from app.mail.catalogue import sample_context
    from app.templates_editor.defaults import DEFAULTS
    from app.templates_editor.services import render

    org = factories.make_org()
    _, subject, html = DEFAULTS[TemplateKind.INVITATION]
    context = sample_context({"interview.location": location})
    rendered = render(org, TemplateKind.INVITATION, subject, html, None, context)
    link = rf'<a href="{re.escape(location)}"[^>]*>{re.escape(location)}</a>'
    assert bool(re.search(link, rendered.html)) is linked
    if location:
        assert location in rendered.text
    assert re.search(r"Please reply by [^.]*\d\d:\d\d", rendered.text)  # links expire then


def test_branding_preview_shows_this_orgs_invitation_never_anothers(factories, login_as, post):
    from app.templates_editor.services import add_version

    other = factories.make_org("Other")
    theirs = factories.make_email_template(other, name="Theirs")
    add_version(theirs, None, "S", "<p>Other org's private wording</p>", None)
    mine_org = factories.make_org("Mine")  # no template of its own: the starter one is shown
    login_as(factories.make_user(mine_org, Role.ADMIN), mine_org)
    part = post("/settings/branding/preview", BRANDING).get_data(as_text=True)
    assert "private wording" not in part and "Accept or decline" in part


@pytest.mark.parametrize(
    "location, html_has, text_has",
    [
        ("https://meet.example.com/abc", '<a href="https://meet.example.com/abc"', "meet.example"),
        ("Room 4 <b>", "Room 4 &lt;b&gt;", "Room 4 <b>"),
        ("javascript:alert(1)", "<td>javascript:alert(1)</td>", "javascript:alert(1)"),
        ('https://x.example/"onmouseover="a', "<td>https://x.example/", "x.example"),  # not linked
    ],
)
def test_the_link_filter_links_web_addresses_only(location, html_has, text_has):
    brand = Brand("Acme", None, "#3A3FD8", "#F2F3FF", None, None)
    context = catalogue.sample_context({"interview.location": location})
    rendered = render_authored(
        subject="s",
        html="<table><tr><td>{{ interview.location|link }}</td></tr></table>",
        text="Where: {{ interview.location|link }}",
        brand=brand,
        context=context,
        bulk=False,
    )
    assert html_has in rendered.html, rendered.html
    assert text_has in rendered.text and "<a " not in rendered.text
    assert '<a href="https://x.example' not in rendered.html  # a quote ends no attribute
