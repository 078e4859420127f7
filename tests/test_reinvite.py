"""Inviting the same people again for the same job: the review shows who already holds an open
or answered invitation and leaves them out unless included knowingly; once included and sent,
their earlier invitation shows as replaced and its calendar entry is cancelled."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, Campaign, InterviewSlot, Invitation, Role, TemplateKind
from tests.conftest import csrf_token


@pytest.fixture
def first_round(factories, login_as, post, sink, run_worker, app):
    """Five shortlisted candidates (one suppressed) invited to a fixed time; c0 accepted, c1
    declined, c2 has not answered, c3 was never invited."""
    org = factories.make_org("Acme")
    org.send_rate_per_minute = 100_000  # every mail in one worker run (no throttle wait)
    user = factories.make_user(org, Role.RECRUITER, email="rita@example.com")
    login_as(user, org)
    job = factories.make_job(org, "Data Engineer")
    template = factories.make_email_template(org, TemplateKind.INVITATION, name="Invite")
    people = [
        factories.make_candidate(
            org, email=f"c{n}@example.com", first_name=f"C{n}", tags=["first" if n < 3 else "x"]
        )
        for n in range(5)
    ]
    for person in people:
        person.tags = [*person.tags, "all"]
    factories.make_suppression(org, email="c4@example.com")
    db.session.commit()
    first = _campaign(post, job, template, "First round", "first", "2030-07-01T14:00")
    post(f"/campaigns/{first.id}/launch", {"mode": "now"})
    run_worker()
    tokens = {}
    for mail in sink.messages:
        body = mail["data"].decode().replace("=\r\n", "").replace("=3D", "=")
        tokens[mail["to"][0]] = re.search(r"/i/([A-Za-z0-9_-]{43})", body).group(1)
    _answer(app, tokens["c0@example.com"], answer="accept")
    _answer(app, tokens["c1@example.com"], answer="decline", confirm="yes", reason="timing")
    run_worker()
    sink.reset()
    return org, job, template, people, first, tokens


def _campaign(post, job, template, name, tag, slot=""):
    data = {"name": name, "job_id": job.id, "template_id": template.id, "tag": tag}
    if slot:
        data["slot_starts_at"] = slot
    assert post("/campaigns/new", data).status_code == 302
    return db.session.scalars(select(Campaign).order_by(Campaign.id.desc())).first()


def _answer(app, token, **data):
    guest = app.test_client()
    return guest.post(f"/i/{token}", data={**data, "csrf_token": csrf_token(guest)})


def _calendars(sink) -> list[tuple[str, str]]:
    found = []
    for mail in sink.messages:
        parsed = message_from_bytes(mail["data"], policy=policy.default)
        found += [
            (mail["to"][0], p.get_content())
            for p in parsed.walk()
            if p.get_content_type() == "text/calendar"
        ]
    return found


def _states(campaign: Campaign) -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Invitation.status, Invitation.candidate_id).where(
            Invitation.campaign_id == campaign.id
        )
    )
    return {f"c{cid}": status for status, cid in rows}


def test_the_review_leaves_out_those_already_invited(first_round, client, post, run_worker, sink):
    org, job, template, people, first, tokens = first_round
    live = client.get(f"/campaigns/count?tag=all&job_id={job.id}").text  # while choosing
    assert "<strong>1</strong> candidate will be invited" in live
    assert "3 already invited for this job: left out unless you include them" in live
    second = _campaign(post, job, template, "Everyone", "all")
    review = client.get(f"/campaigns/{second.id}").text
    assert "<strong>1</strong>" in review  # c3 only
    assert "<dt>Excluded</dt><dd><strong>4</strong>: 1 unsubscribed or suppressed, 3 already" in (
        review
    )
    assert "3 already invited for Data Engineer" in review
    assert "1 not answered yet · 1 accepted · 0 booked · 1 declined." in review
    for n in range(3):
        assert f"c{n}@example.com" in review.split('id="invited-h"')[1]
    assert "<strong>Left out</strong> unless you include them." in review
    post(f"/campaigns/{second.id}/launch", {"mode": "now"})
    run_worker()
    assert [m["to"][0] for m in sink.messages] == ["c3@example.com"]
    db.session.expire_all()
    assert db.session.get(Campaign, second.id).excluded == {"suppressed": 1, "invited": 3}
    assert "3 already invited</dd>" in client.get(f"/campaigns/{second.id}").text
    states = {i.candidate_id: i.status for i in db.session.scalars(select(Invitation))}
    assert sorted(states.values()) == ["accepted", "declined", "pending", "pending"]


def test_included_knowingly_they_are_replaced_and_taken_off_calendars(
    first_round, client, post, run_worker, sink, app
):
    org, job, template, people, first, tokens = first_round
    second = _campaign(post, job, template, "Everyone", "all", "2030-07-02T10:00")
    response = post(f"/campaigns/{second.id}/include-invited", {"include": "yes"})
    assert response.status_code == 302
    review = client.get(f"/campaigns/{second.id}").text
    assert "<strong>4</strong>" in review and "<strong>Included:</strong>" in review
    post(f"/campaigns/{second.id}/launch", {"mode": "now"})
    run_worker()
    db.session.expire_all()
    old = {
        i.candidate_id: i.status
        for i in db.session.scalars(select(Invitation).where(Invitation.campaign_id == first.id))
    }
    assert set(old.values()) == {"superseded"}
    assert app.test_client().get(f"/i/{tokens['c0@example.com']}").status_code == 404
    cancels = [(to, c) for to, c in _calendars(sink) if "METHOD:CANCEL" in c]
    assert [to for to, _ in cancels] == ["c0@example.com"]  # only the one who had accepted
    accepted = db.session.scalars(
        select(Invitation).where(
            Invitation.campaign_id == first.id, Invitation.candidate_id == people[0].id
        )
    ).one()
    assert f"UID:invitation-{accepted.id}@" in cancels[0][1] and "SEQUENCE:1" in cancels[0][1]
    page = client.get(f"/campaigns/{first.id}").text  # the first campaign says what happened
    assert page.count('<span class="badge badge-replaced">replaced</span>') == 3
    assert "<dt>Replaced</dt><dd" in page and ">3</dd>" in page.split("<dt>Replaced</dt>")[1][:120]
    assert len([m for m in sink.messages if m["to"] == ["c3@example.com"]]) == 1


def test_a_booked_slot_is_given_back_when_its_invitation_is_replaced(
    factories, login_as, post, run_worker, sink
):
    org = factories.make_org("Acme")
    user = factories.make_user(org, Role.RECRUITER)
    login_as(user, org)
    first = factories.launch_campaign(org, people=1, tag="one", user=user)
    slot = factories.make_interview_slot(org, first, starts_in=timedelta(days=4))
    [invitation] = db.session.scalars(
        select(Invitation).where(Invitation.campaign_id == first.id)
    ).all()
    invitation.status, slot.booked = "accepted", 1
    booking = Booking(
        org_id=org.id,
        campaign_id=first.id,
        slot_id=slot.id,
        invitation_id=invitation.id,
        candidate_id=invitation.candidate_id,
        time_zone="America/New_York",
        uid="booking-7@herald.test",
    )
    db.session.add(booking)
    db.session.commit()
    run_worker()
    sink.reset()
    second = _campaign(post, first.job, first.template, "Again", "one")
    post(f"/campaigns/{second.id}/include-invited", {"include": "yes"})
    post(f"/campaigns/{second.id}/launch", {"mode": "now"})
    run_worker()
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "cancelled"
    assert db.session.get(InterviewSlot, slot.id).booked == 0  # the place is free again
    [(to, ics)] = [(to, c) for to, c in _calendars(sink) if "METHOD:CANCEL" in c]
    assert "UID:booking-7@herald.test" in ics and "SEQUENCE:1" in ics


def test_including_is_for_drafts_only(first_round, client, post):
    org, job, template, people, first, tokens = first_round
    response = post(f"/campaigns/{first.id}/include-invited", {"include": "yes"})
    assert response.status_code == 303
    db.session.expire_all()
    assert "include_invited" not in db.session.get(Campaign, first.id).audience
