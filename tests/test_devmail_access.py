"""The dev mailbox with two organizations: each sees its own mail, and Herald's account mail
(password reset, team invite) only reaches the account it was sent to and the one who sent it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.services import request_password_reset
from app.devmail import store
from app.devmail.sink import start_sink
from app.extensions import db
from app.models import Message, Role
from app.team.services import invite
from tests.conftest import _free_port


@pytest.fixture
def mailbox(app, monkeypatch, tmp_path):
    """The real dev mailbox sink in a folder of its own; the app sends to it and reads it."""
    port = _free_port()
    controller = start_sink(str(tmp_path), port=port)
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    monkeypatch.setitem(app.config, "DEVMAIL_DIR", str(tmp_path))
    yield str(tmp_path)
    controller.stop()


@pytest.fixture
def two_orgs(app, factories, mailbox, run_worker):
    """Acme (Ada, owner; Rob, recruiter) and Globex (Gus, owner), each with mail in the box."""
    acme, globex = factories.make_org("Acme"), factories.make_org("Globex")
    ada = factories.make_user(acme, email="ada@acme.example")
    rob = factories.make_user(acme, role=Role.RECRUITER, email="rob@acme.example")
    gus = factories.make_user(globex, email="gus@globex.example")
    mails = {
        "acme": factories.make_message(acme).message_id,
        "globex": factories.make_message(globex).message_id,
    }
    with app.test_request_context():  # the links in them are built as in a request
        request_password_reset("ada@acme.example")
        invite(globex, gus, Role.OWNER, "newbie@example.com", Role.ADMIN)
        db.session.commit()
    for kind in ("password_reset", "team_invite"):
        mails[kind] = db.session.scalars(
            select(Message.message_id).where(Message.kind == kind)
        ).one()
    run_worker()
    stored = [store.get_mail(mailbox, m.key) for m in store.list_mails(mailbox).mails]
    keys = {dict(m.headers)["Message-ID"]: m.key for m in stored}
    assert len(keys) == 4
    return {"ada": (ada, acme), "rob": (rob, acme), "gus": (gus, globex)}, {
        name: keys[mid] for name, mid in mails.items()
    }


def _listed(client, keys: dict[str, str]) -> set[str]:
    page = client.get("/dev/mail/").get_data(as_text=True)
    return {name for name, key in keys.items() if f"/dev/mail/{key}" in page}


def test_each_org_sees_its_own_mail_and_each_person_their_account_mail(client, login_as, two_orgs):
    people, keys = two_orgs
    login_as(*people["ada"])
    assert _listed(client, keys) == {"acme", "password_reset"}
    login_as(*people["rob"])  # a teammate does not see Ada's reset link
    assert _listed(client, keys) == {"acme"}
    login_as(*people["gus"])  # Globex's owner sent the invite
    assert _listed(client, keys) == {"globex", "team_invite"}


def test_another_orgs_mail_is_404(client, login_as, two_orgs):
    people, keys = two_orgs
    login_as(*people["ada"])
    for name in ("globex", "team_invite"):
        for suffix in ("", "/html", "/attachments/invite.ics"):
            assert client.get(f"/dev/mail/{keys[name]}{suffix}").status_code == 404, name
    login_as(*people["gus"])
    assert client.get(f"/dev/mail/{keys['password_reset']}").status_code == 404
    assert client.get(f"/dev/mail/{keys['globex']}").status_code == 200


def test_emptying_the_mailbox_leaves_other_orgs_mail(client, login_as, post, two_orgs, mailbox):
    people, keys = two_orgs
    login_as(*people["ada"])
    assert post("/dev/mail/clear").status_code == 302
    left = {m.key for m in store.list_mails(mailbox).mails}
    assert left == {keys["globex"], keys["team_invite"]}
