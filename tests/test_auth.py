"""Sign-up, log in, rate limits, CSRF, password reset and email verification."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.models import Membership, Message, Organization, Role, User
from tests.conftest import csrf_token, session_token
from tests.factories import PASSWORD

SIGNUP = {
    "org_name": "Globex Talent",
    "name": "Gina",
    "email": "Gina@Example.com",
    "password": "a-long-password",
}


def test_signup_creates_org_owner_and_sends_verification(client, ctx, post):
    response = post("/signup", SIGNUP)
    assert response.status_code == 302
    user = db.session.scalars(select(User)).one()
    assert user.email == "gina@example.com" and user.password_hash.startswith("$argon2id$")
    membership = db.session.scalars(select(Membership)).one()
    assert membership.role == Role.OWNER
    assert db.session.get(Organization, membership.org_id).name == "Globex Talent"
    mail = db.session.scalars(select(Message)).one()
    assert mail.kind == "verify_email" and mail.to_email == "gina@example.com"
    page = client.get("/").get_data(as_text=True)
    assert "Globex Talent" in page and "Please confirm your email address" in page


def test_signup_bad_input_gets_clear_messages_and_400(client, ctx, post, factories):
    factories.make_user(factories.make_org(), email="taken@example.com")
    cases = [
        ({"email": "not-an-email"}, "An email address must have an @-sign"),
        ({"password": "short"}, "Use at least 10 characters."),
        ({"email": "TAKEN@example.com"}, "An account with this email already exists"),
        ({"org_name": ""}, "Name your organization."),
    ]
    for change, message in cases:
        response = post("/signup", {**SIGNUP, **change})
        assert response.status_code == 400, change
        assert message in response.get_data(as_text=True), change
    assert db.session.scalars(select(User)).all()[0].email == "taken@example.com"
    assert len(db.session.scalars(select(User)).all()) == 1
    bad = {"org_name": "", "name": "", "email": "not-an-email", "password": "short"}
    page = post("/signup", bad).get_data(as_text=True)  # every problem at once, each at its field
    for name in bad:
        assert f'id="{name}-error"' in page, name
    taken = post("/signup", {**SIGNUP, "email": "taken@example.com", "password": "x"}).text
    assert "already exists" in taken and 'id="password-error"' in taken


def test_form_without_csrf_token_is_refused(client, ctx):
    response = client.post("/signup", data=SIGNUP)
    assert response.status_code == 400
    assert "Your form expired" in response.get_data(as_text=True)
    assert db.session.scalars(select(User)).all() == []


def test_login_and_logout(client, factories, post):
    org = factories.make_org("Initech")
    factories.make_user(org, email="li@example.com")
    response = post("/login", {"email": "LI@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert "Initech" in client.get("/").get_data(as_text=True)
    assert post("/logout").status_code == 302
    assert client.get("/team/").status_code == 302  # back to log in


def test_login_open_redirect_is_refused(client, factories, post):
    factories.make_user(factories.make_org(), email="li@example.com")
    response = post(
        "/login?next=https://evil.example/x", {"email": "li@example.com", "password": PASSWORD}
    )
    assert response.location == "/"


def test_wrong_password_then_account_lockout(client, factories, post):
    factories.make_user(factories.make_org(), email="li@example.com")
    for _ in range(5):
        response = post("/login", {"email": "li@example.com", "password": "wrong-password"})
        assert response.status_code == 401
        assert "don&#39;t match an account" in response.get_data(as_text=True)
    response = post("/login", {"email": "li@example.com", "password": PASSWORD})
    assert response.status_code == 429  # even the right password waits now
    assert "Too many failed attempts for this account" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0


def test_login_rate_limit_per_ip(app, client, factories, post):
    factories.make_user(factories.make_org(), email="li@example.com")
    limit = app.config["LOGIN_LIMIT_PER_IP"]
    for n in range(limit):
        post("/login", {"email": f"nobody{n}@example.com", "password": "whatever-pass"})
    response = post("/login", {"email": "li@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many login attempts from your network" in response.get_data(as_text=True)


def _link(message: Message, name: str) -> str:
    """The link as the worker would put it in the mail (signed at render time, never stored)."""
    from app.mail import links

    assert name not in message.context  # no working link in the database
    url = links.resolve(dict(message.context))[name]
    return url.replace("http://127.0.0.1:5000", "")


def test_password_reset_is_single_use_and_ends_other_sessions(client, app, ctx, factories, post):
    user = factories.make_user(factories.make_org(), email="li@example.com")
    other = app.test_client()
    with other.session_transaction() as sess:
        sess["_user_id"] = session_token(app, user)
    assert other.get("/team/").status_code == 200

    response = post("/forgot", {"email": "li@example.com"})
    assert response.status_code == 302
    post("/forgot", {"email": "nobody@example.com"})  # same answer, no mail
    mail = db.session.scalars(select(Message).where(Message.kind == "password_reset")).one()
    link = _link(mail, "reset_url")
    assert client.get(link).status_code == 200
    response = post(link, {"password": "brand-new-password", "confirm": "brand-new-password"})
    assert response.status_code == 302
    assert other.get("/team/").status_code == 302  # the old session ended
    again = client.get(link)
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    assert client.get("/reset/garbage").status_code == 400


def test_email_verification_link(client, ctx, post):
    post("/signup", SIGNUP)
    mail = db.session.scalars(select(Message)).one()
    response = client.get(_link(mail, "verify_url"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.scalars(select(User)).one().email_verified_at is not None
    assert "Please confirm your email" not in client.get("/").get_data(as_text=True)
    assert client.get("/verify/forged.token").status_code == 400


def test_session_cookie_flags(app, client, factories):
    factories.make_user(factories.make_org(), email="li@example.com")
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": "li@example.com", "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    cookie = response.headers.get("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert re.search(r"session=", cookie)
