"""The candidate's answer: decline asks for confirmation and offers a reason kept for the
recruiter; an answer may change until the reply-by time; bad input is a clear 4xx that changes
nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.campaigns import services
from app.extensions import db
from app.models import Invitation, Message, Role, TemplateKind
from app.outbox.queue import kick_dispatcher
from tests.conftest import csrf_token


@pytest.fixture
def sent(factories, login_as, sink, run_worker):
    """A campaign with a reply-by time in 5 days, sent to two candidates; the recruiter is
    logged in; returns (campaign, invitation, its token)."""
    org = factories.make_org("Acme")
    user = factories.make_user(org, Role.RECRUITER, email="rita@example.com")
    login_as(user, org)
    job = factories.make_job(org, "Data Engineer")
    invite = factories.make_email_template(org, TemplateKind.INVITATION, name="Invite")
    for n in range(2):
        factories.make_candidate(org, email=f"c{n}@example.com", first_name=f"C{n}", tags=["r"])
    campaign = services.create(
        org,
        user,
        name="Round",
        job=job,
        template=invite,
        audience={"tag": "r"},
        respond_by=datetime.now(UTC) + timedelta(days=5),
        slot_starts_at=None,
        location=None,
    )
    services.launch(org, campaign, user, None)
    db.session.commit()
    kick_dispatcher()  # as the launch route does
    run_worker()
    mail = next(m for m in sink.messages if m["to"] == ["c0@example.com"])
    body = mail["data"].decode().replace("=\r\n", "").replace("=3D", "=")
    token = re.search(r"/i/([A-Za-z0-9_-]{43})", body).group(1)
    invitation = db.session.scalars(
        select(Invitation).where(Invitation.campaign_id == campaign.id).order_by(Invitation.id)
    ).first()
    return campaign, invitation, token


def _say(app, token: str, **data):
    guest = app.test_client()
    return guest.post(f"/i/{token}", data={**data, "csrf_token": csrf_token(guest)})


def _state(invitation: Invitation) -> tuple:
    db.session.expire_all()
    found = db.session.get(Invitation, invitation.id)
    return found.status, found.decline_reason, found.decline_note


def test_decline_asks_first_and_keeps_the_reason_for_the_recruiter(
    app, client, sent, run_worker, sink
):
    campaign, invitation, token = sent
    asked = _say(app, token, answer="decline")
    assert asked.status_code == 200 and "Decline this interview?" in asked.text
    assert 'value="another_offer"' in asked.text and 'maxlength="500"' in asked.text
    assert _state(invitation) == ("pending", None, None)  # nothing recorded yet
    done = _say(app, token, answer="decline", confirm="yes", reason="timing", note="Back in March.")
    assert done.status_code == 200 and "Your answer is recorded" in done.text
    assert _state(invitation) == ("declined", "timing", "Back in March.")
    assert "Your reason: Timing doesn" in done.text and "Accept instead" in done.text
    page = client.get(f"/campaigns/{campaign.id}").text  # the recruiter sees why
    assert "Timing doesn&#39;t work: “Back in March.”" in page
    profile = client.get(f"/candidates/{db.session.get(Invitation, invitation.id).candidate_id}")
    assert "Timing doesn&#39;t work: “Back in March.”" in profile.text
    sink.reset()
    run_worker()
    [notice] = [m for m in sink.messages if m["to"] == ["rita@example.com"]]
    text = notice["data"].decode().replace("=\r\n", "")
    assert "Reason: Timing doesn" in text and "Back in March." in text
    plain = _say(app, token, answer="decline", confirm="yes")  # no reason this time
    assert plain.status_code == 200 and _state(invitation) == ("declined", None, None)


def test_an_answer_changes_until_the_reply_by_time_and_not_after(app, sent):
    campaign, invitation, token = sent
    _say(app, token, answer="decline", confirm="yes", reason="another_offer")
    back = _say(app, token, answer="accept")
    assert back.status_code == 200 and _state(invitation) == ("accepted", None, None)
    assert "Decline instead" in back.text and "You can change your answer until" in back.text
    clock.set_clock(clock.FrozenClock(campaign.respond_by + timedelta(minutes=1)))
    late = _say(app, token, answer="decline", confirm="yes", reason="timing")
    assert late.status_code == 409 and "time to change the answer has passed" in late.text
    assert _state(invitation) == ("accepted", None, None)
    page = app.test_client().get(f"/i/{token}").text
    assert "Decline instead" not in page and "Changed your mind?" in page


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        ({"answer": "decline", "confirm": "yes", "reason": "bored"}, 400, "reasons listed"),
        ({"answer": "decline", "confirm": "yes", "note": "x" * 501}, 400, "500 characters"),
        ({"answer": "maybe"}, 400, "Choose accept or decline."),
        ({}, 400, "Choose accept or decline."),
    ],
)
def test_bad_answers_are_refused_and_change_nothing(app, sent, data, status, says):
    campaign, invitation, token = sent
    response = _say(app, token, **data)
    assert response.status_code == status and says in response.text
    assert _state(invitation) == ("pending", None, None)
    assert db.session.scalars(select(Message).where(Message.kind != "invitation")).all() == []


def test_a_form_without_its_csrf_token_changes_nothing(app, sent):
    campaign, invitation, token = sent
    response = app.test_client().post(f"/i/{token}", data={"answer": "accept"})
    assert response.status_code == 400
    assert _state(invitation) == ("pending", None, None)


def test_declining_a_booked_slot_gives_the_place_back(app, ctx):
    from app.invitations import booking
    from app.models import Booking
    from tests.booking_setup import counts, slot_campaign

    setup = slot_campaign()
    slot = setup.slot(timedelta(days=3))
    invitation, token = setup.invite("ann@example.com", zone="Asia/Tokyo")
    booking.book(setup.org, invitation, slot.id, "Asia/Tokyo")
    db.session.commit()
    assert counts(slot.id) == (1, 1)
    step = _say(app, token, answer="decline")
    assert step.status_code == 200 and "Decline this interview?" in step.text
    done = _say(app, token, answer="decline", confirm="yes", reason="another_offer")
    assert done.status_code == 200
    assert _state(invitation) == ("declined", "another_offer", None)
    assert counts(slot.id) == (0, 0)
    cancel = db.session.scalars(select(Message).where(Message.kind == "booking_cancelled")).one()
    assert cancel.context["_calendar"]["cancel"] is True
    assert db.session.scalars(select(Booking)).one().status == "cancelled"


def test_a_booked_slot_inside_the_cutoff_cannot_be_declined_online(app, ctx):
    from app.invitations import booking
    from tests.booking_setup import counts, slot_campaign

    setup = slot_campaign()
    slot = setup.slot(timedelta(days=3))
    invitation, token = setup.invite("ann@example.com")
    booking.book(setup.org, invitation, slot.id, "Europe/Berlin")
    db.session.commit()
    clock.set_clock(clock.FrozenClock(slot.starts_at - timedelta(hours=2)))  # cutoff is 24 h
    refused = _say(app, token, answer="decline", confirm="yes")
    assert refused.status_code == 409
    assert _state(invitation)[0] == "accepted" and counts(slot.id) == (1, 1)
