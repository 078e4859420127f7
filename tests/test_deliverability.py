"""Admin pages for providers, DKIM and the suppression list: validation, secrets at rest, test
connection, audit, and bad input answered with a message (never a 500)."""

from __future__ import annotations

import io

import dns.resolver
import pytest
from sqlalchemy import select

from app.crypto import decrypt
from app.extensions import db
from app.models import AuditEntry, ProviderAccount, Role, Suppression
from tests.conftest import SINK_PORT, closed_port


@pytest.fixture
def admin(factories, login_as):
    org = factories.make_org("Acme")
    org.sender_email = "talent@acme.test"
    db.session.commit()
    user = factories.make_user(org, Role.ADMIN)
    login_as(user, org)
    return org


def _accounts() -> list[ProviderAccount]:
    db.session.expire_all()
    return db.session.scalars(select(ProviderAccount).order_by(ProviderAccount.position)).all()


def _audit() -> list[str]:
    return [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_add_smtp_provider_keeps_the_password_encrypted_and_never_shows_it(
    admin, client, post, sink
):
    smtp = {"kind": "smtp", "label": "Relay", "host": "127.0.0.1", "port": SINK_PORT}
    response = post("/settings/providers", {**smtp, "security": "none", "secret": "hunter2-pw"})
    assert response.status_code == 302
    [account] = _accounts()
    assert "hunter2" not in account.secret_encrypted and decrypt(account.secret_encrypted) == (
        "hunter2-pw"
    )
    page = client.get("/settings/providers").get_data(as_text=True)
    assert "Relay" in page and "hunter2" not in page and f"127.0.0.1:{SINK_PORT}" in page
    edit = client.get(f"/settings/providers/{account.id}").get_data(as_text=True)
    assert "hunter2" not in edit and "Leave empty to keep it" in edit
    post(f"/settings/providers/{account.id}", {"label": "Relay 2", **smtp, "security": "none"})
    assert decrypt(_accounts()[0].secret_encrypted) == "hunter2-pw"  # empty keeps the secret
    assert _audit() == ["provider.added", "provider.changed"]


def test_test_connection_reports_success_and_refusal(admin, client, post, factories, sink):
    good = factories.make_provider_account(
        admin, label="Sink", settings={"host": "127.0.0.1", "port": SINK_PORT, "security": "none"}
    )
    bad = factories.make_provider_account(
        admin, label="Gone", settings={"host": "127.0.0.1", "port": closed_port()}
    )
    untested = client.get("/settings/providers").text  # added, never tested: not "up" yet
    assert f'<span id="badge-{good.id}"><span class="badge badge-cancelled"' in untested
    assert "not tested</span>" in untested and ">up</span>" not in untested
    ok = post(f"/settings/providers/{good.id}/test", headers={"HX-Request": "true"})
    assert ok.status_code == 200 and "✓" in ok.get_data(as_text=True)
    assert "Connected." in ok.text and "logged in" not in ok.text  # no login was asked for
    refused = post(f"/settings/providers/{bad.id}/test", headers={"HX-Request": "true"})
    assert "connection refused" in refused.get_data(as_text=True)
    badge = f'<span id="badge-{bad.id}" hx-swap-oob="true"><span class="badge badge-breaker-open"'
    assert badge in refused.text and "test failed</span>" in refused.text  # no longer "up"
    page = client.get("/settings/providers").text
    assert f'<span id="badge-{bad.id}"><span class="badge badge-breaker-open"' in page
    assert f'<span id="badge-{good.id}"><span class="badge badge-breaker-closed"' in page


def test_provider_input_is_checked(admin, app, post, monkeypatch):
    cases = [  # (form, words, the field they are said at)
        ({"kind": "smtp", "host": "bad host!", "port": "25"}, "host name", "new-smtp-host"),
        (
            {"kind": "smtp", "host": "smtp.example.com", "port": "99999"},
            "1 to 65535",
            "new-smtp-port",
        ),
        (
            {"kind": "mailgun", "domain": "mg.example.com", "region": "us"},
            "API key",
            "new-mailgun-secret",
        ),
        (
            {"kind": "mailgun", "domain": "not a domain", "secret": "k"},
            "sending domain",
            "new-mailgun-domain",
        ),
        (
            {"kind": "mailgun", "domain": "mg.example.com", "region": "mars", "secret": "k"},
            "US",
            "new-mailgun-region",
        ),
        ({"kind": "fax"}, "SMTP or Mailgun", None),
    ]
    for form, message, at in cases:
        response = post("/settings/providers", form)
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and message in page, form
        if at:
            assert (
                f'id="{at}-error" role="alert">' in page
                and f'{at}-error"' in page.split(f'id="{at}"')[1].split(">")[0]
            ), form  # the input points at its message
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_HOSTS", False)
    for host in ("127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254"):
        response = post("/settings/providers", {"kind": "smtp", "host": host, "port": "25"})
        assert response.status_code == 400, host
        assert "private network" in response.get_data(as_text=True)
    assert _accounts() == []


def test_mailgun_account_test_connection_against_the_contract_server(
    admin, app, post, mailgun_server, monkeypatch
):
    monkeypatch.setitem(app.config, "MAILGUN_BASE_URL", mailgun_server.url)
    form = {"kind": "mailgun", "label": "MG", "domain": mailgun_server.domain, "region": "eu"}
    assert post("/settings/providers", {**form, "secret": "wrong-key"}).status_code == 302
    [account] = _accounts()
    refused = post(f"/settings/providers/{account.id}/test", headers={"HX-Request": "true"})
    text = refused.get_data(as_text=True)
    assert "refused" in text and "wrong-key" not in text
    post(f"/settings/providers/{account.id}", {**form, "secret": mailgun_server.key})
    ok = post(f"/settings/providers/{account.id}/test", headers={"HX-Request": "true"})
    assert "✓" in ok.get_data(as_text=True)


def test_reorder_disable_and_remove(admin, post, factories):
    a = factories.make_provider_account(admin, label="A")
    b = factories.make_provider_account(admin, label="B")
    post(f"/settings/providers/{b.id}/up")
    assert [x.label for x in _accounts()] == ["B", "A"]
    post(f"/settings/providers/{a.id}/disable")
    assert [x.enabled for x in _accounts()] == [True, False]
    post(f"/settings/providers/{a.id}/remove")
    assert [x.label for x in _accounts()] == ["B"]
    assert _audit() == ["provider.reordered", "provider.disabled", "provider.removed"]


def test_dkim_generate_publish_check_and_enable(admin, client, post, monkeypatch):
    assert post("/settings/dkim/generate", {"selector": "Bad Selector!"}).status_code == 400
    assert post("/settings/dkim/generate", {"selector": "herald1"}).status_code == 302
    page = client.get("/settings/dkim").get_data(as_text=True)
    assert "herald1._domainkey.acme.test" in page and "v=DKIM1; k=rsa; p=" in page
    db.session.expire_all()
    assert "PRIVATE KEY" not in (admin.dkim_key_encrypted or "")

    monkeypatch.setattr(
        dns.resolver, "resolve", lambda *a, **k: (_ for _ in ()).throw(dns.resolver.NXDOMAIN())
    )
    post("/settings/dkim/check")
    assert "No TXT record" in client.get("/settings/dkim").get_data(as_text=True)
    post("/settings/dkim/enable")
    db.session.expire_all()
    assert admin.dkim_enabled
    assert "dkim.key_generated" in _audit() and "dkim.enabled" in _audit()


def test_dkim_import_refuses_text_that_is_not_a_key(admin, post):
    response = post("/settings/dkim/import", {"selector": "s1", "private_key": "hello"})
    assert response.status_code == 400 and "PEM" in response.get_data(as_text=True)
    db.session.expire_all()
    assert admin.dkim_key_encrypted is None


def test_suppression_page_add_search_remove_import_export(admin, client, post):
    assert post("/suppressions", {"email": "not-an-email", "scope": "all"}).status_code == 400
    assert post(
        "/suppressions", {"email": " Ann@Example.com ", "scope": "reminder"}
    ).status_code == (302)
    rows = db.session.scalars(select(Suppression)).all()
    assert [(s.email, s.scope, s.reason) for s in rows] == [
        ("ann@example.com", ["reminder"], "manual")
    ]
    csv = (
        "email,reason,scope\nbob@example.com,hard_bounce,all\n"
        "nope,manual,all\n=cmd@x.com,manual,all\n"
    )
    response = post(
        "/suppressions/import",
        {"file": (io.BytesIO(csv.encode()), "list.csv")},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Line 3" in html
    found = client.get("/suppressions?q=bob", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "bob@example.com" in found and "ann@example.com" not in found
    export = client.get("/suppressions.csv").get_data(as_text=True)
    assert "bob@example.com,hard_bounce,all" in export and "'=cmd@x.com" in export
    ann = db.session.scalar(select(Suppression).where(Suppression.email == "ann@example.com"))
    assert post(f"/suppressions/{ann.id}/remove").status_code == 302
    assert set(_audit()) >= {"suppression.added", "suppression.imported", "suppression.removed"}


def test_a_recruiter_adds_and_imports_suppressions_but_only_admins_remove(
    factories, login_as, client, post
):
    org = factories.make_org()
    login_as(factories.make_user(org, Role.RECRUITER), org)
    page = client.get("/suppressions").get_data(as_text=True)
    assert "Add an address" in page and 'action="/suppressions/import"' in page
    imported = post(
        "/suppressions/import",
        {"file": (io.BytesIO(b"a@example.com\nb@example.com,complaint,all\n"), "list.csv")},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 200 and "1 address suppressed." in imported.text
    assert "Line 2: Only admins import a spam complaint" in imported.text  # admins lift those
    added = db.session.scalar(select(Suppression).where(Suppression.email == "a@example.com"))
    assert post(f"/suppressions/{added.id}/remove").status_code == 403


def test_viewer_sees_the_suppression_list_but_cannot_change_it(factories, login_as, client, post):
    org = factories.make_org()
    factories.make_suppression(org, email="x@example.com")
    login_as(factories.make_user(org, Role.VIEWER), org)
    page = client.get("/suppressions").get_data(as_text=True)
    assert "x@example.com" in page and "Add an address" not in page
    assert post("/suppressions", {"email": "y@example.com"}).status_code == 403


def test_moving_an_account_to_another_server_needs_the_password_again(admin, post, factories):
    account = factories.make_provider_account(
        admin, label="Relay", settings={"host": "smtp.example.com", "port": 587}, secret="pw"
    )
    moved = {"label": "Relay", "host": "attacker.example.net", "port": "587", "security": "tls"}
    response = post(f"/settings/providers/{account.id}", moved)
    assert response.status_code == 400 and "enter the password" in response.get_data(as_text=True)
    assert _accounts()[0].settings["host"] == "smtp.example.com"


def test_odd_input_on_dead_letters_and_imports_is_a_4xx(admin, client, post):
    for url in ("/dead-letters?campaign=²", "/dead-letters?provider=acct²", "/dead-letters?q=%00"):
        assert client.get(url).status_code in (200, 400), url
    assert post("/dead-letters/retry", {"ids": ["²"]}).status_code == 400
    assert post("/dead-letters/discard", {"ids": ["²"], "reason": "x"}).status_code == 400
    unclosed = 'email\nok@example.com\n"' + "x" * 200_000 + "\n"
    response = post(
        "/suppressions/import",
        {"file": (io.BytesIO(unclosed.encode()), "bad.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200 and "could not be read as CSV" in response.get_data(
        as_text=True
    )
    big = post(
        "/suppressions/import",
        {"file": (io.BytesIO(b"a@example.com\n" * 400_000), "big.csv")},
        content_type="multipart/form-data",
    )
    assert big.status_code == 400 and "larger than 5 MB" in big.get_data(as_text=True)
    before = _audit()
    for empty in (b"", b"email\n", b"\n \n"):
        response = post(
            "/suppressions/import",
            {"file": (io.BytesIO(empty), "empty.csv")},
            content_type="multipart/form-data",
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and "The file has no addresses" in page, empty
        assert "suppressed." not in page
    assert _audit() == before  # nothing imported, nothing logged


def test_webhook_key_saved_removed_and_an_empty_save_refused(admin, client, post):
    org = admin
    response = post("/settings/providers/webhook-key", {"signing_key": "  "})
    assert response.status_code == 400
    assert "Paste the HTTP webhook signing key" in response.get_data(as_text=True)
    assert post("/settings/providers/webhook-key", {"action": "remove"}).status_code == 302
    assert _audit() == []  # nothing there, nothing removed, nothing logged
    post("/settings/providers/webhook-key", {"signing_key": "key-abc", "action": "save"})
    db.session.refresh(org)
    assert decrypt(org.mailgun_signing_key_encrypted) == "key-abc"
    page = client.get("/settings/providers").get_data(as_text=True)
    assert "key-abc" not in page and "Remove key" in page
    post("/settings/providers/webhook-key", {"signing_key": "", "action": "remove"})
    db.session.refresh(org)
    assert org.mailgun_signing_key_encrypted is None
    assert _audit() == ["webhook_key.changed", "webhook_key.removed"]
