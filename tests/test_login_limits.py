"""Guessing stays slow without locking the owner out, and every 429 says when to come back."""

from __future__ import annotations

import pytest
from flask import url_for
from sqlalchemy import select
from werkzeug.routing import BuildError

from app.extensions import db
from app.mail import links
from app.models import Message, Role
from tests.conftest import FreshContextClient, csrf_token
from tests.factories import PASSWORD

WRONG = "not-the-password"


def _from(app, ip: str, **headers: str):
    """A browser at `ip` (headers such as X-Forwarded-For go with every request)."""
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = ip
    for name, value in headers.items():
        browser.environ_base["HTTP_" + name.upper().replace("-", "_")] = value
    return browser


def _login(browser, password: str, email: str = "li@example.com"):
    data = {"email": email, "password": password, "csrf_token": csrf_token(browser)}
    return browser.post("/login", data=data)


def _refused(response, text: str = "Too many failed attempts for this account") -> int:
    """Assert a 429 with a readable message and Retry-After; return the seconds."""
    assert response.status_code == 429
    assert text in response.get_data(as_text=True)
    return int(response.headers["Retry-After"])


def test_a_stranger_guessing_cannot_lock_the_owner_out(app, factories):
    factories.make_user(factories.make_org(), email="li@example.com")
    attacker = _from(app, "203.0.113.9")
    for _ in range(app.config["LOGIN_LIMIT_PER_ACCOUNT_IP"]):
        assert _login(attacker, WRONG).status_code == 401
    wait = _refused(_login(attacker, WRONG))
    assert 0 < wait <= app.config["LOGIN_LIMIT_ACCOUNT_IP_WINDOW_SECONDS"]
    _refused(_login(attacker, PASSWORD))  # the right password from the guessing IP waits too

    owner = _from(app, "198.51.100.7")
    assert _login(owner, PASSWORD).status_code == 302
    assert owner.get("/team/").status_code == 200


def test_many_addresses_trip_the_account_limit_yet_a_clean_address_gets_in(
    app, factories, monkeypatch
):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ACCOUNT", 4)
    factories.make_user(factories.make_org(), email="li@example.com")
    botnet = [_from(app, f"203.0.113.{n}") for n in range(1, 6)]
    for bot in botnet:  # guesses from each: under the tight limit, over the loose one in all
        for _ in range(app.config["LOGIN_LIMIT_TRIPPED_PER_IP"]):
            assert _login(bot, WRONG).status_code == 401

    wait = _refused(_login(botnet[0], PASSWORD))  # an address that failed here must wait
    assert 0 < wait <= app.config["LOGIN_LIMIT_ACCOUNT_WINDOW_SECONDS"]
    newcomer = _from(app, "203.0.113.77")
    for _ in range(app.config["LOGIN_LIMIT_TRIPPED_PER_IP"]):  # a few guesses per new address
        assert _login(newcomer, WRONG).status_code == 401
    _refused(_login(newcomer, PASSWORD))  # then it waits like the others

    owner = _from(app, "198.51.100.7")
    assert _login(owner, PASSWORD).status_code == 302


def test_the_owners_typo_does_not_lock_them_out_while_a_botnet_trips_the_account(
    app, factories, monkeypatch
):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ACCOUNT", 4)
    factories.make_user(factories.make_org(), email="li@example.com")
    owner = _from(app, "198.51.100.7")
    assert _login(owner, WRONG).status_code == 401  # a typo from home
    for n in range(1, 6):  # then strangers push the account over its loose limit
        assert _login(_from(app, f"203.0.113.{n}"), WRONG).status_code == 401
    assert _login(owner, PASSWORD).status_code == 302


def test_one_address_guessing_across_accounts_waits(app, factories, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP", 3)
    factories.make_user(factories.make_org(), email="li@example.com")
    sprayer = _from(app, "203.0.113.9")
    for n in range(3):
        assert _login(sprayer, WRONG, f"nobody{n}@example.com").status_code == 401
    _refused(_login(sprayer, PASSWORD), "Too many login attempts from your network")
    assert _login(_from(app, "198.51.100.7"), PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_each_client_counts_on_its_own(app, factories):
    """All requests arrive from the proxy; X-Forwarded-For names the client."""
    from app import create_app
    from app.config import Config

    proxied = create_app(Config(TRUSTED_PROXY_COUNT=1))
    proxied.test_client_class = FreshContextClient
    factories.make_user(factories.make_org(), email="li@example.com")
    attacker = _from(proxied, "10.0.0.2", x_forwarded_for="203.0.113.9")
    for _ in range(app.config["LOGIN_LIMIT_PER_ACCOUNT_IP"]):
        assert _login(attacker, WRONG).status_code == 401
    _refused(_login(attacker, PASSWORD))
    owner = _from(proxied, "10.0.0.2", x_forwarded_for="198.51.100.7")
    assert _login(owner, PASSWORD).status_code == 302


def test_joining_with_an_existing_account_counts_as_a_login(app, ctx, factories, login_as, post):
    factories.make_user(factories.make_org(), email="sam@example.com")
    org = factories.make_org()
    login_as(factories.make_user(org, Role.ADMIN), org)
    assert post("/team/invites", {"email": "sam@example.com", "role": "viewer"}).status_code < 400
    mail = db.session.scalars(select(Message).where(Message.kind == "team_invite")).one()
    link = links.resolve(dict(mail.context))["accept_url"].replace("http://127.0.0.1:5000", "")

    attacker = _from(app, "203.0.113.9")
    for _ in range(app.config["LOGIN_LIMIT_PER_ACCOUNT_IP"]):
        response = attacker.post(link, data={"password": WRONG, "csrf_token": csrf_token(attacker)})
        assert response.status_code == 400
    token = csrf_token(attacker)
    _refused(attacker.post(link, data={"password": PASSWORD, "csrf_token": token}))
    sam = _from(app, "198.51.100.7")
    response = sam.post(link, data={"password": PASSWORD, "csrf_token": csrf_token(sam)})
    assert response.status_code == 302


def _url(app, rule) -> str:
    """A URL for a rule with made-up arguments (a bad token is still counted)."""
    with app.test_request_context():
        try:
            return url_for(rule.endpoint, **{name: "x" for name in rule.arguments})
        except BuildError:
            return url_for(rule.endpoint, **{name: 1 for name in rule.arguments})


@pytest.mark.parametrize("blueprint", ["public", "tracking", "auth"])
def test_every_429_says_when_to_come_back(app, factories, monkeypatch, blueprint):
    monkeypatch.setitem(app.config, "INVITE_RATE_PER_MINUTE", 2)
    monkeypatch.setitem(app.config, "PASSWORD_RESET_LIMIT_PER_IP", 2)
    limited = set()
    routes = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(blueprint + ".")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    for n, (rule, method) in enumerate(routes):
        browser = _from(app, f"192.0.2.{n + 1}")  # each route and method on its own budget
        form = {"csrf_token": csrf_token(browser), "email": "x@example.com", "answer": "accept"}
        for _ in range(3):
            response = browser.open(_url(app, rule), method=method, data=form)
            if response.status_code == 429:
                assert 1 <= int(response.headers["Retry-After"]) <= 3600, rule.endpoint
                limited.add(f"{method} {rule.endpoint}")
    expected = {
        "public": {
            "GET public.invitation",
            "POST public.respond",
            "GET public.unsubscribe_page",
            "POST public.unsubscribe_preferences",
            "POST public.book",
            "GET public.reschedule_page",
            "POST public.reschedule",
            "GET public.cancel_page",
            "POST public.cancel",
            "POST public.none_fit",
            "GET public.calendar",
        },
        "tracking": set(),
        "auth": {"POST auth.forgot"},
    }[blueprint]
    assert limited >= expected
