"""After the interview: attended / no-show on the results list (a fixed time's on the invitation,
a booked slot's on the booking), and the follow-up that goes once, some hours later, to those
who attended."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.jobs.results import send_follow_ups
from app.jobs.schedule import declared
from app.models import Booking, Campaign, Invitation, Message, Role, TemplateKind

pytestmark = pytest.mark.usefixtures("ctx")


@pytest.fixture
def frozen():
    clock_ = clock.FrozenClock()
    clock.set_clock(clock_)
    return clock_


@pytest.fixture
def interview(factories, login_as, frozen):
    """A fixed-time campaign (interview in 1 h, 1 h long) to 3 people; two accepted."""
    org = factories.make_org("Acme")
    user = factories.make_user(org, Role.RECRUITER)
    login_as(user, org)
    campaign = factories.launch_campaign(org, 3, user=user)
    campaign.scheduling = "fixed"
    campaign.slot_starts_at = frozen.current + timedelta(hours=1)
    campaign.slot_ends_at = frozen.current + timedelta(hours=2)
    invitations = sorted(
        db.session.scalars(select(Invitation).where(Invitation.campaign_id == campaign.id)),
        key=lambda i: i.candidate.email,
    )
    for invitation in invitations[:2]:
        invitation.status, invitation.responded_at = "accepted", frozen.current
    db.session.commit()
    thanks = factories.make_email_template(org, TemplateKind.FOLLOW_UP, name="Thanks for coming")
    return org, campaign, invitations, thanks


def _mark(client, post, campaign, invitation, value, htmx=True):
    url = f"/campaigns/{campaign.id}/results/{invitation.id}/attendance"
    headers = {"HX-Request": "true"} if htmx else {}
    return post(
        url,
        {"attended": value, "back": f"/campaigns/{campaign.id}/results?page=1"},
        headers=headers,
    )


def _follow_ups() -> list[Message]:
    db.session.expire_all()
    return db.session.scalars(select(Message).where(Message.kind == "follow_up")).all()


def test_attended_gets_the_follow_up_once_hours_after_the_interview(
    client, post, interview, frozen, run_worker, sink
):
    org, campaign, (ada, bob, cyd), thanks = interview
    saved = post(
        f"/campaigns/{campaign.id}/follow-up", {"template_id": str(thanks.id), "hours": "24"}
    )
    assert saved.status_code == 303
    db.session.refresh(campaign)
    assert (campaign.follow_up_template_id, campaign.follow_up_hours) == (thanks.id, 24)

    early = _mark(client, post, campaign, ada, "attended").get_data(as_text=True)
    assert "once the interview has ended" in early
    page = client.get(f"/campaigns/{campaign.id}/results").get_data(as_text=True)
    assert 'value="no_show"' not in page

    frozen.advance(3 * 3600)  # the interview is over
    page = client.get(f"/campaigns/{campaign.id}/results").get_data(as_text=True)
    assert page.count('value="no_show"') == 2  # the two who accepted
    row = _mark(client, post, campaign, ada, "attended").get_data(as_text=True)
    assert row.startswith(f'<tr id="recipient-{ada.id}"') and 'aria-pressed="true"' in row
    plain = _mark(client, post, campaign, bob, "no_show", htmx=False)
    assert plain.status_code == 303
    assert plain.headers["Location"].endswith(f"/campaigns/{campaign.id}/results?page=1")
    refused = _mark(client, post, campaign, cyd, "attended").get_data(as_text=True)
    assert "Only a candidate who booked or accepted" in refused
    assert "Choose attended or no-show" in _mark(client, post, campaign, ada, "maybe").get_data(
        as_text=True
    )
    db.session.expire_all()
    assert [i.attended for i in (ada, bob, cyd)] == ["attended", "no_show", None]

    assert send_follow_ups() == 0  # 24 h after the end: not yet
    frozen.advance(23 * 3600 + 60)
    assert send_follow_ups() == 1
    assert send_follow_ups() == 0  # a rerun sends nothing more
    [message] = _follow_ups()
    assert message.to_email == ada.candidate.email
    assert message.idempotency_key == f"follow_up:{ada.id}"
    assert message.template_version_id == thanks.current_version_id
    assert (message.invitation_id, message.campaign_id) == (ada.id, campaign.id)
    _mark(client, post, campaign, ada, "no_show")
    _mark(client, post, campaign, ada, "attended")
    assert send_follow_ups() == 0 and len(_follow_ups()) == 1

    run_worker()
    assert sorted(m["to"][0] for m in sink.messages).count(ada.candidate.email) == 2
    csv_text = client.get(f"/campaigns/{campaign.id}/results.csv").get_data(as_text=True)
    assert "Attended" in csv_text and "No-show" in csv_text


def test_a_booked_slot_is_marked_on_its_booking(client, post, factories, interview, frozen):
    org, campaign, (ada, bob, cyd), thanks = interview
    campaign.scheduling = "slots"
    campaign.follow_up_template_id, campaign.follow_up_hours = thanks.id, 2
    slot = factories.make_interview_slot(org, campaign, starts_in=timedelta(hours=1))
    slot.booked = 1
    booking = Booking(
        org_id=org.id,
        campaign_id=campaign.id,
        slot_id=slot.id,
        invitation_id=cyd.id,
        candidate_id=cyd.candidate_id,
        time_zone="Europe/Paris",
        uid="booking-results@herald.test",
    )
    db.session.add(booking)
    db.session.commit()
    booked = client.get(f"/campaigns/{campaign.id}/results?state=booked").get_data(as_text=True)
    assert f"recipient-{cyd.id}" in booked  # booked though the invitation is still pending

    frozen.advance(2 * 3600)
    assert _mark(client, post, campaign, cyd, "attended").status_code == 200
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).attended == "attended"
    assert db.session.get(Invitation, cyd.id).attended is None
    frozen.advance(2 * 3600)
    assert send_follow_ups() == 1 and send_follow_ups() == 0
    assert [m.to_email for m in _follow_ups()] == [cyd.candidate.email]


def test_the_follow_up_setting_refuses_bad_input(client, post, factories, interview):
    org, campaign, _, thanks = interview
    url = f"/campaigns/{campaign.id}/follow-up"
    other = factories.make_email_template(factories.make_org(), TemplateKind.FOLLOW_UP)
    for data in (
        {"template_id": str(thanks.id), "hours": "0"},
        {"template_id": str(thanks.id), "hours": "many"},
        {"template_id": str(other.id), "hours": "24"},  # another org's template
        {"template_id": "abc", "hours": "24"},
    ):
        answer = post(url, data, follow_redirects=True)
        assert answer.status_code == 200 and 'class="flash flash-error"' in answer.get_data(
            as_text=True
        ), data
    db.session.refresh(campaign)
    assert campaign.follow_up_template_id is None
    assert post(url, {"template_id": "", "hours": "48"}).status_code == 303
    db.session.refresh(campaign)
    assert (campaign.follow_up_template_id, campaign.follow_up_hours) == (None, 48)


def test_the_follow_up_job_is_declared(app):
    jobs = {job.id: job for job in declared(app)}
    assert jobs["herald-follow-ups"].func == "app.jobs.results.send_follow_ups"


def test_the_campaign_form_chooses_the_follow_up(client, post, factories, login_as):
    org = factories.make_org()
    user = factories.make_user(org, Role.RECRUITER)
    login_as(user, org)
    job = factories.make_job(org)
    invite = factories.make_email_template(org, TemplateKind.INVITATION, name="Invite")
    thanks = factories.make_email_template(org, TemplateKind.FOLLOW_UP, name="Thanks")
    form = client.get("/campaigns/new").get_data(as_text=True)
    assert f'<option value="{thanks.id}">Thanks</option>' in form
    fields = {"name": "Round", "job_id": job.id, "template_id": invite.id, "tag": ""}
    refused = post("/campaigns/new", {**fields, "follow_up_template_id": str(invite.id)})
    assert refused.status_code == 400 and "Choose one of your follow-up templates" in (
        refused.get_data(as_text=True)
    )
    made = post(
        "/campaigns/new",
        {**fields, "follow_up_template_id": str(thanks.id), "follow_up_hours": "6"},
    )
    assert made.status_code == 302
    campaign = db.session.scalars(select(Campaign).order_by(Campaign.id.desc())).first()
    assert (campaign.follow_up_template_id, campaign.follow_up_hours) == (thanks.id, 6)


def test_no_follow_up_from_a_cancelled_campaign_or_a_deleted_template(
    client, post, interview, frozen
):
    org, campaign, (ada, bob, cyd), thanks = interview
    campaign.follow_up_template_id, campaign.follow_up_hours = thanks.id, 1
    ada.attended = bob.attended = "attended"
    db.session.commit()
    frozen.advance(4 * 3600)
    thanks.deleted_at = clock.now()
    db.session.commit()
    assert send_follow_ups() == 0
    thanks.deleted_at = None
    campaign.status = "cancelled"
    db.session.commit()
    assert send_follow_ups() == 0
    campaign.status = "sent"
    db.session.commit()
    assert send_follow_ups() == 2 and send_follow_ups() == 0
    assert sorted(m.to_email for m in _follow_ups()) == sorted(
        [ada.candidate.email, bob.candidate.email]
    )
