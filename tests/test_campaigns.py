"""Campaigns end to end: audience, review, fan-out, tokens, the candidate's page, scheduling,
pause, cancel, resend, supersede, unsubscribe."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import (
    Campaign,
    Invitation,
    Message,
    Role,
    Suppression,
    TemplateKind,
)


@pytest.fixture
def setup(factories, login_as):
    org = factories.make_org("Acme")
    org.postal_address = "1 Market St"
    db.session.commit()
    user = factories.make_user(org, Role.RECRUITER, email="rita@example.com", name="Rita")
    login_as(user, org)
    job = factories.make_job(org, "Data Engineer")
    template = factories.make_email_template(org, TemplateKind.INVITATION, name="Invite")
    people = [
        factories.make_candidate(
            org, email=f"c{n}@example.com", first_name=f"C{n}", tags=["shortlist"]
        )
        for n in range(3)
    ]
    factories.make_suppression(org, email="c2@example.com")
    return org, user, job, template, people


def _create(post, job, template, **extra) -> Campaign:
    response = post(
        "/campaigns/new",
        {
            "name": "Spring round",
            "job_id": job.id,
            "template_id": template.id,
            "tag": "shortlist",
            **extra,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return db.session.scalars(select(Campaign).order_by(Campaign.id.desc())).first()


def _links(sink) -> list[str]:
    found = []
    for mail in sink.messages:
        body = mail["data"].decode().replace("=\r\n", "").replace("=3D", "=")
        found += re.findall(r"/i/([A-Za-z0-9_-]{43})", body)[:1]
    return found


def test_campaign_end_to_end(app, setup, client, post, sink, run_worker):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    review = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "<strong>2</strong>" in review and "1 unsubscribed or suppressed" in review
    assert "srcdoc=" in review and "C0" in review
    assert post(f"/campaigns/{campaign.id}/launch", {"mode": "now"}).status_code == 302
    invitations = db.session.scalars(select(Invitation)).all()
    assert len(invitations) == 2 and len(db.session.scalars(select(Message)).all()) == 2
    run_worker()
    assert sorted(m["to"][0] for m in sink.messages) == ["c0@example.com", "c1@example.com"]
    tokens = _links(sink)
    assert len(set(tokens)) == 2
    stored = {i.token_hash for i in db.session.scalars(select(Invitation))}
    assert {hashlib.sha256(t.encode()).digest() for t in tokens} == stored  # only hashes kept

    page = app.test_client().get(f"/i/{tokens[0]}")  # the candidate: nobody logged in
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Data Engineer</h1>" in text and "Hi C0," in text
    db.session.expire_all()
    assert {i.status for i in db.session.scalars(select(Invitation))} == {"pending"}  # GET only
    answer = post(f"/i/{tokens[0]}", {"answer": "accept"})
    assert answer.status_code == 200 and "Your answer is recorded" in answer.get_data(as_text=True)
    again = post(f"/i/{tokens[0]}", {"answer": "decline"})  # may change: asked to confirm
    assert again.status_code == 200 and "Decline this interview?" in again.text
    answered = app.test_client().get(f"/i/{tokens[0]}").text
    assert "Decline instead" in answered and "You can change your answer until" in answered
    clock.set_clock(clock.FrozenClock(datetime.now(UTC) + timedelta(days=30)))  # past reply-by
    answered = app.test_client().get(f"/i/{tokens[0]}").text  # no reply-to: no "reply to"
    assert "Reply to the email" not in answered and "Changed your mind? Get in touch" in answered
    org.reply_to = "talent@example.com"
    db.session.commit()
    answered = app.test_client().get(f"/i/{tokens[0]}").text
    assert 'Write to <a href="mailto:talent@example.com">talent@example.com</a>' in answered
    clock.set_clock(None)
    notice = db.session.scalars(select(Message).where(Message.kind == "candidate_response")).one()
    assert notice.to_email == "rita@example.com"
    assert notice.context["campaign"]["url"].endswith(f"/campaigns/{campaign.id}")
    run_worker()  # the recruiter's mail links to the campaign
    [mail] = [m for m in sink.messages if m["to"] == ["rita@example.com"]]
    assert f"/campaigns/{campaign.id}" in mail["data"].decode().replace("=\r\n", "")
    progress = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'Accepted</dt><dd class="ok-text">1' in progress
    first = db.session.scalars(select(Message).where(Message.campaign_id == campaign.id)).first()
    timeline = client.get(f"/messages/{first.id}").get_data(as_text=True)
    crumbs = timeline.split('class="breadcrumb">')[1].split("</p>")[0]  # back to its campaign
    assert f'/campaigns/{campaign.id}">Spring round</a> / Email' in crumbs
    assert '<a href="/campaigns/" aria-current="page">Campaigns</a>' in timeline  # the menu too
    assert progress.count('<span class="badge badge-accepted">accepted</span>') == 1  # the row
    assert "(all 2; each links to its email" in progress
    db.session.expire_all()
    accepted = db.session.scalars(select(Invitation).where(Invitation.status == "accepted")).one()
    person = client.get(f"/candidates/{accepted.candidate_id}").get_data(as_text=True)
    section = person.split('id="candidate-invitations"')[1].split("</table>")[0]
    assert (
        campaign.name in section and '<span class="badge badge-accepted">accepted</span>' in section
    )


@pytest.mark.parametrize("token", ["garbage", "x" * 43, "a" * 5000, "%00", "A" * 42 + "!"])
def test_bad_tokens_get_the_same_404(setup, client, token):
    response = client.get(f"/i/{token}")
    assert response.status_code == 404 and "isn't valid anymore" in response.get_data(as_text=True)


def test_revoked_superseded_and_expired_links_are_404(setup, client, post, sink, run_worker):
    org, user, job, template, people = setup
    first = _create(post, job, template)
    post(f"/campaigns/{first.id}/launch", {"mode": "now"})
    run_worker()
    old = _links(sink)[0]
    sink.reset()
    second = _create(post, job, template)
    post(f"/campaigns/{second.id}/include-invited", {"include": "yes"})  # invited again, knowingly
    post(f"/campaigns/{second.id}/launch", {"mode": "now"})
    run_worker()
    assert client.get(f"/i/{old}").status_code == 404  # superseded by the newer invitation
    new = _links(sink)[0]
    assert client.get(f"/i/{new}").status_code == 200
    frozen = clock.FrozenClock(datetime.now(UTC) + timedelta(days=15))
    clock.set_clock(frozen)
    assert client.get(f"/i/{new}").status_code == 404  # expired


def test_schedule_in_the_org_time_zone(setup, client, post, run_worker, sink):
    org, user, job, template, people = setup
    org.timezone = "Europe/Paris"
    db.session.commit()
    campaign = _create(post, job, template)
    past = post(
        f"/campaigns/{campaign.id}/launch",
        {"mode": "later", "at": "2020-01-01T09:00"},
        follow_redirects=True,
    )
    assert "in the past" in past.get_data(as_text=True)
    gap = post(
        f"/campaigns/{campaign.id}/launch",
        {"mode": "later", "at": "2030-03-31T02:30"},
        follow_redirects=True,
    )
    assert "does not exist in Europe/Paris" in gap.get_data(as_text=True)
    ok = post(f"/campaigns/{campaign.id}/launch", {"mode": "later", "at": "2030-07-01T09:00"})
    assert ok.status_code == 302
    db.session.expire_all()
    assert campaign.status == "scheduled"
    assert campaign.scheduled_at == datetime(2030, 7, 1, 7, 0, tzinfo=UTC)  # CEST = UTC+2
    messages = db.session.scalars(select(Message)).all()
    assert {m.send_after for m in messages} == {campaign.scheduled_at}
    run_worker()
    assert sink.messages == []  # not before its time
    from app.jobs.campaigns import start_due_campaigns

    clock.set_clock(clock.FrozenClock(datetime(2030, 7, 1, 7, 0, 1, tzinfo=UTC)))
    assert start_due_campaigns() == 1
    run_worker()
    assert len(sink.messages) == 2


def test_cancel_a_scheduled_campaign(setup, client, post, run_worker, sink):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "later", "at": "2030-07-01T09:00"})
    post(f"/campaigns/{campaign.id}/cancel")
    db.session.expire_all()
    assert campaign.status == "cancelled"
    assert {m.status for m in db.session.scalars(select(Message))} == {"cancelled"}
    assert {i.status for i in db.session.scalars(select(Invitation))} == {"revoked"}


def test_pause_holds_mail_and_resume_sends_it(setup, client, post, run_worker, sink):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    post(f"/campaigns/{campaign.id}/pause")
    run_worker()
    assert sink.messages == []
    post(f"/campaigns/{campaign.id}/resume")
    run_worker()
    assert len(sink.messages) == 2


def test_resend_to_failed_only_reuses_the_link(setup, client, post, run_worker, sink):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    sink.refuse_rcpt = "550 5.1.1 No such user"
    run_worker()
    assert {m.status for m in db.session.scalars(select(Message))} == {"failed"}
    sink.refuse_rcpt = None
    response = post(f"/campaigns/{campaign.id}/resend-failed", follow_redirects=True)
    assert "2 failed emails queued again" in response.get_data(as_text=True)
    run_worker()
    tokens = _links(sink)
    stored = {i.token_hash for i in db.session.scalars(select(Invitation))}
    assert {hashlib.sha256(t.encode()).digest() for t in tokens} == stored


def test_zero_recipients_and_one_click_unsubscribe(setup, client, post, run_worker, sink):
    org, user, job, template, people = setup
    empty = _create(post, job, template, tag="", q="nobody-matches")
    response = post(f"/campaigns/{empty.id}/launch", {"mode": "now"}, follow_redirects=True)
    assert "No one would receive this campaign" in response.get_data(as_text=True)
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    run_worker()
    body = sink.messages[0]["data"].decode().replace("=\r\n", "").replace("=3D", "=")
    unsubscribe = re.search(r"/u/([^\"'\s<>)]+)", body).group(0)
    assert client.post(unsubscribe).status_code == 200  # one click, no CSRF token needed
    suppressed = {s.email for s in db.session.scalars(select(Suppression))}
    assert sink.messages[0]["to"][0] in suppressed
    counts = client.get("/campaigns/count?tag=shortlist").get_data(as_text=True)
    assert "<strong>1</strong>" in counts


def test_the_list_says_who_a_draft_would_go_to(setup, client, post):
    org, user, job, template, people = setup
    draft = _create(post, job, template)  # 3 tagged, 1 of them suppressed
    sent = _create(post, job, template, name="Sent round")
    post(f"/campaigns/{sent.id}/launch", {"mode": "now"})
    first = db.session.scalars(select(Invitation).where(Invitation.campaign_id == sent.id)).first()
    first.status = "accepted"  # (as the candidate's page does)
    db.session.commit()
    rows = {
        row.split("</a>")[0].rsplit(">", 1)[1]: row
        for row in client.get("/campaigns/").get_data(as_text=True).split("<tr>")[2:]
    }
    assert "2 <span" in rows[draft.name] and "if sent now" in rows[draft.name]
    assert "<td>2</td>" in rows["Sent round"]  # written when it was sent
    assert "1 accepted</span>" in rows["Sent round"] and "0 declined" in rows["Sent round"]


def _answer(app, token: str, **data):
    """The candidate answers on their page (a browser of their own, with its CSRF token)."""
    from tests.conftest import csrf_token

    guest = app.test_client()
    return guest.post(f"/i/{token}", data={**data, "csrf_token": csrf_token(guest)})


def _calendars(sink) -> list[tuple[str, str]]:
    """(recipient, .ics text) of every calendar part the sink received."""
    from email import message_from_bytes, policy

    found = []
    for mail in sink.messages:
        parsed = message_from_bytes(mail["data"], policy=policy.default)
        found += [
            (mail["to"][0], p.get_content())
            for p in parsed.walk()
            if p.get_content_type() == "text/calendar"
        ]
    return found


def test_the_calendar_request_comes_with_the_confirmation(app, setup, post, sink, run_worker):
    org, user, job, template, people = setup
    campaign = _create(post, job, template, slot_starts_at="2030-07-01T14:00", location="Room 4")
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    run_worker()
    assert _calendars(sink) == []  # the invitation asks; nothing on a calendar before a yes
    token = _links(sink)[0]
    owner = sink.messages[0]["to"][0]
    sink.reset()
    assert _answer(app, token, answer="accept").status_code == 200
    run_worker()
    [(to, ics)] = _calendars(sink)
    from email import message_from_bytes, policy

    [mail] = [m for m in sink.messages if m["to"] == [owner]]
    parsed = message_from_bytes(mail["data"], policy=policy.default)
    parts = {p.get_content_type(): p for p in parsed.walk()}
    assert parsed["Subject"].startswith("Confirmed: your Data Engineer interview, Monday 1 July")
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    invitation = db.session.scalars(
        select(Invitation).where(Invitation.candidate_id == people[0].id)
    ).one()
    assert f"UID:invitation-{invitation.id}@" in ics and "SEQUENCE:0" in ics
    assert "DTSTART:20300701T120000Z" in ics  # 14:00 in Paris (CEST), in UTC
    assert "LOCATION:Room 4" in ics
    assert "RSVP=FALSE" in ics and "RSVP=TRUE" not in ics  # the answer is on Herald's page
    assert "application/ics" in parts
    sink.reset()  # declining after accepting takes it off the calendar
    assert _answer(app, token, answer="decline", confirm="yes").status_code == 200
    run_worker()
    [(to, cancel)] = _calendars(sink)
    assert to == owner and "METHOD:CANCEL" in cancel and "SEQUENCE:1" in cancel
    assert f"UID:invitation-{invitation.id}@" in cancel
    sink.reset()  # and back on it with a higher SEQUENCE
    _answer(app, token, answer="accept")
    run_worker()
    [(to, again)] = _calendars(sink)
    assert "METHOD:REQUEST" in again and "SEQUENCE:2" in again


def test_reminders_go_once_to_those_who_have_not_answered(app, setup, post, sink, run_worker):
    org, user, job, template, people = setup
    from tests.factories import make_email_template

    make_email_template(org, TemplateKind.REMINDER, name="Reminder")
    from zoneinfo import ZoneInfo

    slot = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    local = slot.astimezone(ZoneInfo(org.timezone)).strftime("%Y-%m-%dT%H:%M")
    campaign = _create(post, job, template, slot_starts_at=local)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    run_worker()
    from app.models import Reminder

    assert db.session.scalars(select(Reminder)).all() == []  # none due yet
    tokens = _links(sink)
    assert app.test_client().get(f"/i/{tokens[0]}").status_code == 200
    from tests.conftest import csrf_token

    guest = app.test_client()
    guest.post(
        f"/i/{tokens[0]}",
        data={"answer": "decline", "confirm": "yes", "csrf_token": csrf_token(guest)},
    )
    sink.reset()
    from app.jobs.campaigns import send_reminders

    clock.set_clock(clock.FrozenClock(slot - timedelta(minutes=100)))  # both offsets are due
    counts = send_reminders()
    assert counts == {"sent": 2}  # the declined candidate gets none
    run_worker()
    to_candidates = [m for m in sink.messages if m["to"] != ["rita@example.com"]]
    assert len(to_candidates) == 2  # the recruiter also got the "declined" notice
    assert {m["to"][0] for m in to_candidates} == {"c1@example.com"}
    assert send_reminders() == {"sent": 0}  # never twice
    db.session.expire_all()
    assert {
        m.subject for m in db.session.scalars(select(Message).where(Message.kind == "reminder"))
    } == {"Reminder: your interview for Data Engineer"}


def test_moving_and_cancelling_the_interview_update_the_calendar(
    app, setup, post, sink, run_worker
):
    org, user, job, template, people = setup
    factories = __import__("tests.factories", fromlist=["make_email_template"])
    factories.make_email_template(org, TemplateKind.RESCHEDULED, name="Moved")
    factories.make_email_template(org, TemplateKind.CANCELLED, name="Cancelled")
    campaign = _create(post, job, template, slot_starts_at="2030-07-01T14:00")
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    run_worker()
    _answer(app, _links(sink)[0], answer="accept")  # one accepts; the other has not answered
    accepted = sink.messages[0]["to"][0]
    run_worker()
    sink.reset()
    response = post(
        f"/campaigns/{campaign.id}/move", {"starts_at": "2030-07-02T10:00"}, follow_redirects=True
    )
    assert "2 candidates notified" in response.get_data(as_text=True)
    run_worker()
    moved = _calendars(sink)  # only the one whose calendar has it gets an update
    assert [to for to, _ in moved] == [accepted]
    assert all("SEQUENCE:1" in c and "METHOD:REQUEST" in c for _, c in moved)
    assert all("DTSTART:20300702T080000Z" in c for _, c in moved)
    sink.reset()
    post(f"/campaigns/{campaign.id}/cancel")
    run_worker()
    cancelled = _calendars(sink)
    assert [to for to, _ in cancelled] == [accepted]
    assert all("METHOD:CANCEL" in c and "SEQUENCE:2" in c for _, c in cancelled)
    uids = {line for _, c in moved + cancelled for line in c.splitlines() if line.startswith("UID")}
    assert len(uids) == 1  # the same UID throughout


def test_revoke_a_candidates_open_links(app, setup, client, post, sink, run_worker):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    run_worker()
    tokens = _links(sink)
    owner = {m["to"][0]: t for m, t in zip(sink.messages, tokens, strict=True)}
    assert "Revoke open invitation links" in client.get(f"/candidates/{people[0].id}").text
    post(f"/candidates/{people[0].id}/revoke")
    assert app.test_client().get(f"/i/{owner['c0@example.com']}").status_code == 404
    assert app.test_client().get(f"/i/{owner['c1@example.com']}").status_code == 200
    assert "Revoke open invitation links" not in client.get(f"/candidates/{people[0].id}").text
    suppressed = client.get(f"/candidates/{people[2].id}").text  # on the list since setup
    assert "Herald does not mail this address</strong> (all email): added by a" in suppressed
    assert "Herald does not mail" not in client.get(f"/candidates/{people[1].id}").text


def test_a_hand_picked_selection_and_no_cross_org_ids(setup, factories, client, post):
    org, user, job, template, people = setup
    stranger = factories.make_candidate(factories.make_org("Other"), email="x@example.com")
    page = client.get(f"/campaigns/new?candidate={people[0].id}&candidate={stranger.id}")
    text = page.get_data(as_text=True)  # the stranger from another org is neither counted nor named
    assert "1 hand-picked candidate</strong>: C0 " in text and stranger.full_name not in text
    campaign = _create(post, job, template, tag="", ids=f"{people[0].id},{stranger.id}")
    review = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "<strong>1</strong>" in review  # the other org's candidate never counts


def test_cancel_after_a_worker_claimed_sends_nothing(setup, post, sink):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    from app.outbox import send, transitions

    claim = transitions.claim(10)  # a worker holds the rows...
    db.session.commit()
    post(f"/campaigns/{campaign.id}/cancel")  # ...when the recruiter cancels
    assert send.send_claimed(claim).get("sent", 0) == 0
    assert sink.messages == []
    db.session.expire_all()
    assert {m.status for m in db.session.scalars(select(Message))} == {"cancelled"}


def test_a_cancelled_campaigns_mail_gets_the_same_event_whichever_path_cancels_it(
    setup, post, sink
):
    """Mail still queued is cancelled by the cancel itself; mail a sender had claimed is cancelled
    by its begin: both carry one 'cancelled' event with the same reason."""
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    from app.outbox import send, transitions

    claim = transitions.claim(1)  # one row in a sender's hands, the others still queued
    db.session.commit()
    post(f"/campaigns/{campaign.id}/cancel")
    send.send_claimed(claim)
    db.session.expire_all()
    mail = db.session.scalars(select(Message).where(Message.kind == "invitation")).all()
    assert len(mail) > 1 and {m.status for m in mail} == {"cancelled"}
    for message in mail:
        [cancelled] = [e for e in message.events if e.type == "cancelled"]
        assert cancelled.detail["reason"] == "The campaign was cancelled."
    assert sink.messages == []


def test_scheduled_links_outlive_the_send_and_supersede_only_when_sent(
    app, setup, post, sink, run_worker
):
    org, user, job, template, people = setup
    first = _create(post, job, template)
    post(f"/campaigns/{first.id}/launch", {"mode": "now"})
    run_worker()
    live = _links(sink)[0]
    later = _create(post, job, template)
    at = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    post(f"/campaigns/{later.id}/launch", {"mode": "later", "at": at})
    db.session.expire_all()
    scheduled = db.session.scalars(select(Invitation).where(Invitation.campaign_id == later.id))
    assert all(i.expires_at > later.scheduled_at for i in scheduled)  # not dead on arrival
    assert app.test_client().get(f"/i/{live}").status_code == 200  # not superseded yet
    post(f"/campaigns/{later.id}/cancel")
    assert app.test_client().get(f"/i/{live}").status_code == 200


def test_past_dates_are_refused(setup, post):
    org, user, job, template, people = setup
    response = post(
        "/campaigns/new",
        {
            "name": "Late",
            "job_id": job.id,
            "template_id": template.id,
            "respond_by": "2020-01-01T10:00",
        },
    )
    assert response.status_code == 400 and "must be in the future" in response.get_data(
        as_text=True
    )


def _invitation_at(factories, starts: datetime, replies_by: datetime) -> tuple:
    """An invitation whose link is known (its token), for an interview at `starts`."""
    from app.models import Campaign

    invitation = factories.make_invitation(factories.make_org())
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hashlib.sha256(token.encode()).digest()
    invitation.expires_at = replies_by
    campaign = db.session.get(Campaign, invitation.campaign_id)
    campaign.slot_starts_at = starts
    db.session.commit()
    return invitation, campaign, token


def test_invitation_page_shows_the_interview_in_the_candidates_zone(ctx, factories, client):
    """14:00 UTC in January is 09:00 in New York (the candidate's zone) and 15:00 in Paris."""
    from app.models import Candidate

    invitation, campaign, token = _invitation_at(
        factories, datetime(2031, 1, 15, 14, 0, tzinfo=UTC), datetime(2031, 1, 10, tzinfo=UTC)
    )
    candidate = db.session.get(Candidate, invitation.candidate_id)
    candidate.timezone = "America/New_York"
    db.session.commit()
    html = client.get(f"/i/{token}").get_data(as_text=True)
    assert "15 January 2031, 09:00 EST" in html
    candidate.timezone = None
    db.session.commit()
    assert "15 January 2031, 15:00 CET" in client.get(f"/i/{token}").get_data(as_text=True)


def test_invitation_page_links_a_video_call_and_writes_days_without_a_zero(ctx, factories, client):
    invitation, campaign, token = _invitation_at(
        factories, datetime(2031, 1, 3, 14, 0, tzinfo=UTC), datetime(2031, 1, 2, tzinfo=UTC)
    )
    campaign.location = "https://meet.example.com/acme-backend-interview-room-with-a-long-name"
    db.session.commit()
    html = client.get(f"/i/{token}").get_data(as_text=True)
    assert f'<a href="{campaign.location}" rel="noopener noreferrer"' in html
    assert "Friday 3 January 2031" in html and " 03 " not in html
    campaign.location = "javascript:alert(1) https://x"
    db.session.commit()
    html = client.get(f"/i/{token}").get_data(as_text=True)
    assert 'href="javascript' not in html and "javascript:alert(1) https://x" in html


def test_a_campaign_shows_sent_as_soon_as_its_last_email_is_handled(
    ctx, factories, sink, run_worker, login_as, client
):
    """No wait for the periodic check: the dispatcher that handled the last email marks it, and
    the page that was polling its progress reloads whole (header and buttons too)."""
    from app.models import Campaign

    org = factories.make_org()
    campaign = factories.launch_campaign(org, 3)
    login_as(factories.make_user(org, Role.VIEWER), org)
    poll = {"HX-Request": "true"}
    url = f"/campaigns/{campaign.id}?was=sending"
    assert "HX-Refresh" not in client.get(url, headers=poll).headers  # still sending
    run_worker()
    db.session.expire_all()
    done = db.session.get(Campaign, campaign.id)
    assert len(sink.messages) == 3
    assert done.status == "sent" and done.finished_at is not None
    assert client.get(url, headers=poll).headers.get("HX-Refresh") == "true"
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "every 2s" not in page  # a sent campaign's page stops polling


def _local(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_links_expire_when_the_interview_starts_when_no_deadline_is_set(setup, post):
    """Without a reply deadline the links do not outlive the interview (the org's 14 days would
    ask for a reply after it); moving the interview moves them."""
    org, user, job, template, people = setup
    campaign = _create(post, job, template, slot_starts_at=_local(3))
    post(f"/campaigns/{campaign.id}/launch", {"mode": "now"})
    db.session.expire_all()

    def deadlines() -> set:
        rows = db.session.scalars(select(Invitation).where(Invitation.campaign_id == campaign.id))
        return {i.expires_at for i in rows}

    assert deadlines() == {campaign.slot_starts_at}
    assert campaign.context["invitation"]["expires_at"] == campaign.slot_starts_at.isoformat()
    post(f"/campaigns/{campaign.id}/move", {"starts_at": _local(5)})
    db.session.expire_all()
    assert campaign.slot_starts_at > datetime.now(UTC) + timedelta(days=4)
    assert deadlines() == {campaign.slot_starts_at}
    assert campaign.context["invitation"]["expires_at"] == campaign.slot_starts_at.isoformat()


def test_a_reply_deadline_after_the_interview_is_refused(setup, post):
    org, user, job, template, people = setup
    campaign = _create(post, job, template, slot_starts_at=_local(3), respond_by=_local(4))
    response = post(f"/campaigns/{campaign.id}/launch", {"mode": "now"}, follow_redirects=True)
    assert "The reply deadline is after the interview" in response.get_data(as_text=True)
    db.session.expire_all()
    assert campaign.status == "draft"


def test_invitation_templates_come_first_under_their_own_heading(setup, factories, client):
    org, user, job, template, people = setup
    factories.make_email_template(org, TemplateKind.REMINDER, name="Nudge")
    page = client.get("/campaigns/new").get_data(as_text=True)
    select = page.split('id="template_id"')[1].split("</select>")[0]
    invitations, others = select.split('<optgroup label="Other kinds">')
    assert 'label="Invitation templates"' in invitations and ">Invite</option>" in invitations
    assert ">Nudge (reminder)</option>" in others and "Nudge" not in invitations


def test_review_warns_when_the_org_has_no_postal_address(setup, client, post):
    org, user, job, template, people = setup
    campaign = _create(post, job, template)
    assert "without your postal address" not in client.get(f"/campaigns/{campaign.id}").text
    org.postal_address = None
    db.session.commit()
    review = client.get(f"/campaigns/{campaign.id}").text
    assert "without your postal address" in review and "Ask an admin" in review  # a recruiter


def test_progress_says_the_rate_and_the_time_left(ctx, factories, login_as, client):
    org = factories.make_org()
    campaign = factories.launch_campaign(org, 3)
    org.send_rate_per_minute = 2
    db.session.commit()
    login_as(factories.make_user(org, Role.VIEWER), org)
    page = client.get(f"/campaigns/{campaign.id}", headers={"HX-Request": "true"}).text
    assert "0 of 3 handled. Sending at up to 2 a minute (this organization's rate)" in page
    assert "about 2 minutes left." in page
    login_as(factories.make_user(org, Role.ADMIN), org)
    page = client.get(f"/campaigns/{campaign.id}").text
    assert 'rate, set in <a href="/settings">Settings</a>), about 2 minutes left.' in page
    org.send_rate_per_minute = 60  # 3 emails at one a second
    db.session.commit()
    assert "less than a minute left." in client.get(f"/campaigns/{campaign.id}").text
    org.send_rate_per_minute = 1
    db.session.commit()
    assert "about 3 minutes left." in client.get(f"/campaigns/{campaign.id}").text
