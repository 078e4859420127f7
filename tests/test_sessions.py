"""Sessions end on the server: a copied cookie is worth nothing after logout, a password change,
a reset by email or "Log out everywhere", and a Redis flush brings none back."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app import clock
from app.extensions import db, redis
from app.models import Message
from tests.conftest import csrf_token
from tests.factories import PASSWORD

NEW_PASSWORD = "a-brand-new-password"


def _browser(app, email: str, password: str = PASSWORD):
    """A new test client logged in through the login form, as a browser would."""
    browser = app.test_client()
    token = csrf_token(browser)
    response = browser.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def _copy(app, browser):
    """Another client holding a copy of `browser`'s session cookie (a stolen cookie)."""
    thief = app.test_client()
    thief.set_cookie("session", browser.get_cookie("session").value)
    return thief


def _logged_in(browser) -> bool:
    """The team page answers (200) only to a logged-in browser; others go to log in."""
    response = browser.get("/team/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def _menu_post(browser, label: str):
    """Press a button of the account menu: the form around it, with its CSRF token."""
    page = browser.get("/").get_data(as_text=True)
    found = re.search(
        r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="csrf_token" '
        rf'value="([^"]+)">\s*<button class="menu-item" type="submit">{label}</button>',
        page,
    )
    assert found, f"no {label!r} in the account menu"
    return browser.post(found.group(1), data={"csrf_token": found.group(2)})


def test_logout_ends_a_copied_cookie_even_after_a_redis_flush(app, factories):
    factories.make_user(factories.make_org(), email="li@example.com")
    browser = _browser(app, "li@example.com")
    thief = _copy(app, browser)
    assert _logged_in(thief)

    response = _menu_post(browser, "Log out")
    assert response.status_code == 302 and response.location == "/login"
    response = thief.get("/team/")
    assert response.status_code == 302 and response.location.startswith("/login")
    redis.client.flushdb()
    assert not _logged_in(thief)
    assert not _logged_in(browser)


def test_password_change_ends_other_sessions_and_keeps_this_one(app, factories, ctx):
    factories.make_user(factories.make_org(), email="li@example.com")
    here = _browser(app, "li@example.com")
    laptop = _browser(app, "li@example.com")
    thief = _copy(app, laptop)
    page = here.get("/").get_data(as_text=True)
    assert 'href="/account/password">Change password</a>' in page

    form = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": csrf_token(here)}
    wrong = here.post("/account/password", data={**form, "current": "not-my-password"})
    assert wrong.status_code == 400
    assert "That is not your current password." in wrong.get_data(as_text=True)
    assert _logged_in(laptop)  # nothing changed

    response = here.post("/account/password", data={**form, "current": PASSWORD})
    assert response.status_code == 302
    assert "Your other sessions were logged out" in here.get("/").get_data(as_text=True)
    assert _logged_in(here)
    assert not _logged_in(laptop) and not _logged_in(thief)
    _browser(app, "li@example.com", NEW_PASSWORD)  # the new password works


def test_password_change_without_csrf_token_changes_nothing(app, factories):
    factories.make_user(factories.make_org(), email="li@example.com")
    here = _browser(app, "li@example.com")
    laptop = _browser(app, "li@example.com")
    form = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert here.post("/account/password", data=form).status_code == 400
    assert _logged_in(laptop)
    _browser(app, "li@example.com")  # the old password still works


def test_reset_by_email_ends_every_session(app, client, ctx, factories, post):
    factories.make_user(factories.make_org(), email="li@example.com")
    office, phone = _browser(app, "li@example.com"), _browser(app, "li@example.com")
    post("/forgot", {"email": "li@example.com"})
    mail = db.session.scalars(select(Message).where(Message.kind == "password_reset")).one()
    from app.mail import links

    link = links.resolve(dict(mail.context))["reset_url"].replace("http://127.0.0.1:5000", "")
    response = post(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert not _logged_in(office) and not _logged_in(phone)
    assert _logged_in(client)  # the browser that reset it is logged in afresh


def test_log_out_everywhere_ends_all_sessions_of_this_user_only(app, factories):
    org = factories.make_org()
    factories.make_user(org, email="li@example.com")
    factories.make_user(org, email="sam@example.com")
    here, laptop = _browser(app, "li@example.com"), _browser(app, "li@example.com")
    thief, sam = _copy(app, laptop), _browser(app, "sam@example.com")

    assert here.post("/logout/everywhere").status_code == 400  # no CSRF token: refused
    assert _logged_in(laptop)
    response = _menu_post(here, "Log out everywhere")
    assert response.status_code == 302 and response.location == "/login"
    assert "logged out on every device" in here.get("/login").get_data(as_text=True)
    assert not _logged_in(here) and not _logged_in(laptop) and not _logged_in(thief)
    assert _logged_in(sam)


def test_an_idle_session_ends_and_a_used_one_lives_on(app, factories):
    frozen = clock.FrozenClock()
    clock.set_clock(frozen)
    factories.make_user(factories.make_org(), email="li@example.com")
    used, idle = _browser(app, "li@example.com"), _browser(app, "li@example.com")
    days = app.config["SESSION_IDLE_SECONDS"] / 86400
    for _ in range(3):  # longer than the idle limit in all, never idle that long
        frozen.advance(timedelta(days=days * 0.6).total_seconds())
        assert _logged_in(used)
    assert not _logged_in(idle)


def test_a_cookie_from_before_server_sessions_is_anonymous(app, client, factories):
    user = factories.make_user(factories.make_org())
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{user.id}:{user.credential_fingerprint}"  # the old cookie format
    assert not _logged_in(client)


def test_ended_sessions_are_forgotten_after_a_week_and_live_ones_kept(app, factories):
    from app.jobs.retention import purge_events
    from app.models import UserSession

    frozen = clock.FrozenClock()
    clock.set_clock(frozen)
    factories.make_user(factories.make_org(), email="li@example.com")
    left, idle, kept = (_browser(app, "li@example.com") for _ in range(3))
    _menu_post(left, "Log out")
    for _ in range(15):  # 30 days: `kept` is used now and then, `idle` never again
        frozen.advance(timedelta(days=2).total_seconds())
        assert _logged_in(kept)
    purge_events()
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(UserSession)) == 1
    assert _logged_in(kept)
