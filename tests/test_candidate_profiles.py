"""Candidates one at a time: add, edit (name, email, phone, time zone, custom fields), delete one
added by mistake while their sent mail keeps its history."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Candidate, Invitation, Message, Role
from app.outbox.queue import queue_message

VALID = {
    "email": "  Ada.Lovelace@Example.COM ",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+44 20 7946 0000",
    "timezone": "Europe/London",
    "custom-0-name": "Portfolio URL",
    "custom-0-value": "https://ada.example",
    "custom-1-name": "",
    "custom-1-value": "",
}


@pytest.fixture
def org(factories, login_as):
    org = factories.make_org("Acme")
    login_as(factories.make_user(org, Role.RECRUITER, name="Rita Recruiter"), org)
    return org


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def _error(response) -> str:
    found = re.findall(r'class="error"[^>]*>([^<]+)<', response.get_data(as_text=True))
    return html.unescape(" ".join(found))


def test_add_a_candidate_and_see_every_field_on_their_page(org, client, post):
    form = client.get("/candidates/new").get_data(as_text=True)
    assert 'name="custom-0-name"' in form and '<option value="Europe/London">' in form
    response = post("/candidates/new", VALID)
    assert response.status_code == 302, _error(response)
    person = db.session.scalars(select(Candidate)).one()
    assert person.email == "ada.lovelace@example.com"  # normalised as the importer does
    assert person.custom == {"portfolio_url": "https://ada.example"}
    page = client.get(response.location).get_data(as_text=True)
    details = page.split('id="candidate-details"')[1].split("</dl>")[0]
    for shown in ("+44 20 7946 0000", "Europe/London", "Portfolio url", "https://ada.example"):
        assert shown in details
    assert _actions() == ["candidate.added"]
    listed = client.get("/candidates/").get_data(as_text=True)
    assert "New candidate" in listed and "ada.lovelace@example.com" in listed


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"email": "ADA.lovelace@example.com"}, "already exists in this organization"),
        ({"email": "not-an-address"}, "Invalid email address"),
        ({"email": ""}, "Give the candidate's email address."),
        ({"timezone": "Mars/Olympus"}, "Not a valid choice"),
        ({"custom-1-name": "", "custom-1-value": "orphan"}, "needs a name"),
        ({"custom-1-name": "portfolio-url", "custom-1-value": "x"}, "both be called"),
        ({"custom-1-name": "n" * 41, "custom-1-value": "x"}, "40 characters"),
        ({"custom-1-name": "note", "custom-1-value": "v" * 1001}, "1000 characters"),
        (
            {f"custom-{i}-{k}": f"f{i}" for i in range(21) for k in ("name", "value")},
            "At most 20 custom fields (21 given)",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(org, factories, post, change, says):
    factories.make_candidate(org, email="ada.lovelace@example.com")
    response = post("/candidates/new", {**VALID, **change})
    assert response.status_code == 400 and says in _error(response), _error(response)
    assert len(db.session.scalars(select(Candidate)).all()) == 1


def test_the_same_email_in_another_org_is_fine(org, factories, post):
    factories.make_candidate(factories.make_org("Other"), email="ada.lovelace@example.com")
    assert post("/candidates/new", VALID).status_code == 302


def test_edit_every_field_and_remove_a_custom_field(org, factories, client, post):
    person = factories.make_candidate(org, email="grace@example.com")
    person.custom, person.timezone = {"github": "gh", "team": "compilers"}, "US/Eastern"
    db.session.commit()
    form = client.get(f"/candidates/{person.id}/edit").get_data(as_text=True)
    assert 'value="compilers"' in form and '<option selected value="US/Eastern">' in form
    response = post(
        f"/candidates/{person.id}/edit",
        {
            "email": "Grace.Hopper@Example.com",
            "first_name": "Grace",
            "last_name": "Hopper",
            "phone": "555 0100",
            "timezone": "America/New_York",
            "custom-0-name": "github",
            "custom-0-value": "ghopper",
            "custom-1-name": "",  # cleared: removed
            "custom-1-value": "",
        },
    )
    assert response.status_code == 302, _error(response)
    db.session.expire_all()
    person = db.session.get(Candidate, person.id)
    assert (person.email, person.full_name, person.phone, person.timezone) == (
        "grace.hopper@example.com",
        "Grace Hopper",
        "555 0100",
        "America/New_York",
    )
    assert person.custom == {"github": "ghopper"}
    entry = db.session.scalars(select(AuditEntry)).one()
    assert entry.action == "candidate.edited"
    assert set(entry.detail["fields"]) == {"email", "first_name", "last_name", "phone"} | {
        "timezone",
        "custom",
    }


def test_edit_to_an_email_another_candidate_has_is_refused(org, factories, post):
    factories.make_candidate(org, email="taken@example.com")
    person = factories.make_candidate(org, email="mine@example.com")
    response = post(f"/candidates/{person.id}/edit", {"email": "TAKEN@example.com"})
    assert response.status_code == 400
    assert "taken@example.com already exists" in _error(response)
    db.session.expire_all()
    assert db.session.get(Candidate, person.id).email == "mine@example.com"


def test_a_viewer_sees_details_but_cannot_add_edit_or_delete(factories, client, login_as):
    org = factories.make_org()
    person = factories.make_candidate(org)
    login_as(factories.make_user(org, Role.VIEWER), org)
    page = client.get(f"/candidates/{person.id}").get_data(as_text=True)
    assert "Delete candidate" not in page and "/edit" not in page
    assert client.get("/candidates/new").status_code == 403
    assert client.get(f"/candidates/{person.id}/edit").status_code == 403


def _links(sink) -> dict[str, str]:
    """Recipient → their invitation token, from the mail that arrived."""
    found = {}
    for mail in sink.messages:
        body = mail["data"].decode().replace("=\r\n", "").replace("=3D", "=")
        found[mail["to"][0]] = re.search(r"/i/([A-Za-z0-9_-]{43})", body).group(1)
    return found


def test_delete_keeps_sent_mail_closes_links_and_stops_unsent_mail(
    app, org, factories, client, post, sink, run_worker
):
    campaign = factories.launch_campaign(org, people=2, tag="round")
    run_worker()
    links = _links(sink)
    gone = db.session.scalars(
        select(Candidate).where(Candidate.email == "round1@example.com")
    ).one()
    sent = db.session.scalars(select(Message).where(Message.candidate_id == gone.id)).one()
    later = queue_message(
        org_id=org.id, kind="custom", template="test_email", to_email=gone.email, to_name="P1"
    )
    later.candidate_id = gone.id
    db.session.commit()
    guest = app.test_client()
    assert guest.get(f"/i/{links['round1@example.com']}").status_code == 200

    response = post(f"/candidates/{gone.id}/delete")
    assert response.status_code == 302 and response.location.endswith("/candidates/")
    flashed = client.get("/candidates/").get_data(as_text=True)
    assert "deleted" in flashed and "1 unsent email will not go out" in flashed
    assert client.get(f"/candidates/{gone.id}").status_code == 404
    assert guest.get(f"/i/{links['round1@example.com']}").status_code == 404
    assert guest.get(f"/i/{links['round0@example.com']}").status_code == 200  # others keep theirs

    page = client.get(f"/messages/{sent.id}").get_data(as_text=True)  # the history stays
    assert "Deleted candidate" in page and "P1" not in page
    assert page.count('class="timeline-type"') >= 2  # queued, sent
    recipients = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Deleted candidate" in recipients
    db.session.expire_all()
    assert db.session.get(Message, later.id).status == "cancelled"
    assert [e.type for e in db.session.get(Message, later.id).events][-1] == "cancelled"
    assert len(db.session.scalars(select(Invitation)).all()) == 1
    entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "candidate.deleted" and "round1@example.com" not in str(entry.detail)
    run_worker()
    assert len(sink.messages) == 2  # the unsent one never went


def test_another_orgs_candidate_is_404_for_view_edit_and_delete(org, factories, client, post):
    theirs = factories.make_candidate(factories.make_org("Other"), email="x@example.com")
    assert client.get(f"/candidates/{theirs.id}").status_code == 404
    assert client.get(f"/candidates/{theirs.id}/edit").status_code == 404
    assert post(f"/candidates/{theirs.id}/edit", VALID).status_code == 404
    assert post(f"/candidates/{theirs.id}/delete").status_code == 404
    db.session.expire_all()
    assert db.session.get(Candidate, theirs.id).email == "x@example.com"


def test_mail_being_sent_to_a_deleted_candidate_does_not_go(org, factories, post, sink):
    from app.outbox import send, transitions

    person = factories.make_candidate(org, email="gone@example.com")
    message = queue_message(
        org_id=org.id, kind="custom", template="test_email", to_email=person.email, to_name="G"
    )
    message.candidate_id = person.id
    db.session.commit()
    claim = transitions.claim(1, ids=[message.id])  # a worker has it in hand
    db.session.commit()
    assert claim.ids == [message.id]

    assert post(f"/candidates/{person.id}/delete").status_code == 302
    send.send_claimed(claim)
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "cancelled"
    assert sink.messages == []
