"""One-click unsubscribe (RFC 8058) and the preferences page, as a mail client and a candidate
would use them: no cookies, no CSRF token on the one-click POST; a GET changes nothing."""

from __future__ import annotations

import email

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Message, Suppression

pytestmark = pytest.mark.usefixtures("ctx")


def _unsubscribe_urls(sink) -> dict[str, str]:
    """Recipient → the path in the List-Unsubscribe header of the mail they got."""
    found = {}
    for mail in sink.messages:
        header = email.message_from_bytes(mail["data"])["List-Unsubscribe"]
        url = header.strip().strip("<>")
        found[mail["to"][0]] = url.removeprefix("http://127.0.0.1:5000")
    return found


def _suppressed() -> dict[str, Suppression]:
    db.session.expire_all()
    return {s.email: s for s in db.session.scalars(select(Suppression))}


@pytest.fixture
def mailed(factories, sink, run_worker):
    org = factories.make_org("Acme")
    factories.launch_campaign(org, 3)
    run_worker()
    return org, _unsubscribe_urls(sink)


def test_get_only_shows_the_choices(app, mailed):
    _, urls = mailed
    scanner = app.test_client()  # a link scanner: follows the link, no cookies
    page = scanner.get(urls["round0@example.com"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "round0@example.com" in html
    assert "Only invitations" in html and "Every email from Acme" in html
    assert _suppressed() == {}


def test_one_click_post_urlencoded_without_cookie_or_token_suppresses_at_once(app, mailed):
    _, urls = mailed
    mail_client = app.test_client(use_cookies=False)
    response = mail_client.post(
        urls["round0@example.com"],
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200 and "Location" not in response.headers
    assert "unsubscribed" in response.get_data(as_text=True)
    row = _suppressed()["round0@example.com"]
    assert (row.reason, row.scope, row.source) == ("unsubscribed", ["all"], "one-click")


def test_one_click_post_multipart_suppresses_too(app, mailed):
    _, urls = mailed
    response = app.test_client(use_cookies=False).post(
        urls["round1@example.com"], data={"List-Unsubscribe": "One-Click"}, content_type=None
    )
    assert response.status_code == 200
    assert "round1@example.com" in _suppressed()


def test_a_suppressed_address_is_never_sent_to_again(app, mailed, factories, sink, run_worker):
    org, urls = mailed
    app.test_client(use_cookies=False).post(
        urls["round2@example.com"], data="List-Unsubscribe=One-Click"
    )
    sink.reset()
    from app.outbox.queue import queue_message

    message = queue_message(  # a follow-up written straight to the outbox
        org_id=org.id,
        kind="follow_up",
        template="test_email",
        to_email="Round2@Example.com",
        context={"org": {"name": org.name}, "user": {"name": "x"}, "requested_at": "now"},
    )
    db.session.commit()
    run_worker()
    assert sink.messages == []
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "suppressed"


def test_tampered_or_cut_links_get_a_clear_400(app, mailed):
    _, urls = mailed
    url = urls["round0@example.com"]
    client = app.test_client(use_cookies=False)
    flipped = url[:-5] + ("A" if url[-5] != "A" else "B") + url[-4:]  # a signature byte
    for bad in (url[:-6], flipped, "/u/not-a-token"):
        get, post = client.get(bad), client.post(bad, data="List-Unsubscribe=One-Click")
        assert get.status_code == post.status_code == 400
        assert "isn't valid" in get.get_data(as_text=True)
    assert _suppressed() == {}


def test_preferences_choose_a_kind_then_resubscribe(app, mailed):
    _, urls = mailed
    url = urls["round0@example.com"]
    browser = app.test_client()
    page = browser.get(url).get_data(as_text=True)
    assert 'rel="icon"' in page  # (candidate pages too: no /favicon.ico 404 in the logs)
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    tampered = browser.post(
        url + "/preferences",
        data={"csrf_token": token, "action": "unsubscribe", "scope": "everything-please"},
    )
    text = tampered.get_data(as_text=True)  # the candidate's own page again, not Herald's
    assert tampered.status_code == 400 and "Choose what to unsubscribe from." in text
    assert "Log in" not in text and _suppressed() == {}
    response = browser.post(
        url + "/preferences",
        data={"csrf_token": token, "action": "unsubscribe", "scope": "invitation"},
    )
    assert response.status_code == 200 and "interview invitations" in response.get_data(
        as_text=True
    )
    assert _suppressed()["round0@example.com"].scope == ["invitation"]
    no_token = browser.post(url + "/preferences", data={"action": "resubscribe"})
    assert no_token.status_code == 400  # the preferences form is CSRF-protected
    again = browser.post(url + "/preferences", data={"csrf_token": token, "action": "resubscribe"})
    assert "subscribed again" in again.get_data(as_text=True)
    assert _suppressed() == {}


def test_resubscribe_never_lifts_a_bounce_or_complaint(app, mailed):
    org, urls = mailed
    from app.suppressions.services import suppress

    suppress(org.id, "round0@example.com", "complaint")
    db.session.commit()
    browser = app.test_client()
    import re

    page = browser.get(urls["round0@example.com"]).get_data(as_text=True)
    assert "no longer sends email to this address" in page and "Subscribe again" not in page
    page = browser.get(urls["round1@example.com"]).get_data(as_text=True)  # same session
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    browser.post(
        urls["round0@example.com"] + "/preferences",
        data={"csrf_token": token, "action": "resubscribe"},
    )
    assert _suppressed()["round0@example.com"].reason == "complaint"


def test_candidate_pages_wear_the_organizations_colour(app, mailed):
    org, urls = mailed
    from app.mail.compose import contrast

    client = app.test_client()
    org.primary_color = "#FFD400"  # a light yellow: dark text on it, darker links on white
    db.session.commit()
    page = client.get(urls["round0@example.com"]).get_data(as_text=True)
    assert '<link rel="stylesheet" href="/brand.css?c=FFD400">' in page
    sheet = client.get("/brand.css?c=FFD400")
    css = sheet.get_data(as_text=True)
    assert sheet.status_code == 200 and sheet.content_type.startswith("text/css")
    assert "immutable" in sheet.headers["Cache-Control"]
    assert "--brand: #ffd400;" in css and "--on-brand: #111111;" in css
    link = css.split("--brand-text: ")[1][:7]
    assert contrast(link, "#FFFFFF") >= 4.5
    for bad in ("", "red", "12345", "zzzzzz", "1234567"):
        assert client.get(f"/brand.css?c={bad}").status_code == 400, bad
    done = client.post(urls["round0@example.com"], data={"List-Unsubscribe": "One-Click"})
    token = urls["round0@example.com"].rsplit("/u/", 1)[1]
    assert f'href="/u/{token}">Subscribe again</a>' in done.get_data(as_text=True)
