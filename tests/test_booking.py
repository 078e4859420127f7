"""Candidates booking interview slots over HTTP: the picker in their zone, booking, moving and
cancelling with the calendar mail each sends, the cutoff, and every refusal leaving nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.models import Booking, Invitation, Message
from tests.booking_setup import counts, form_state, slot_campaign, submit

WHEN = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)  # 15:00 in Berlin, 09:00 in New York


def _fresh(invitation_id: int) -> Invitation:
    """The invitation as PostgreSQL has it now."""
    db.session.expire_all()
    return db.session.get(Invitation, invitation_id)


def _mail_parts(raw: bytes) -> tuple[str, str]:
    """(the text part, the invite.ics) of a sent mail."""
    mail = message_from_bytes(raw)
    text, ics = "", ""
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
        if part.get_filename() == "invite.ics":
            ics = part.get_payload(decode=True).decode()
    return text, ics


def _sent(sink, run_worker, count: int) -> list[tuple[str, str, str]]:
    """Send what is queued; (to, text, ics) of each mail the sink got."""
    run_worker()
    assert sink.wait_for_count(count, 10)
    return [(m["to"][0], *_mail_parts(m["data"])) for m in sink.messages]


def test_picker_lists_open_times_by_day_in_the_candidates_zone(ctx, client):
    setup = slot_campaign()
    setup.slot(WHEN)
    setup.slot(WHEN + timedelta(hours=2))  # 16:00 UTC: 11:00 in New York, 01:00 next day in Tokyo
    full = setup.slot(WHEN + timedelta(hours=4))
    full.booked = 1
    setup.slot(timedelta(hours=5))  # inside the 24 h cutoff: not offered
    db.session.commit()
    _, token = setup.invite(zone="America/New_York")

    html = client.get(f"/i/{token}").get_data(as_text=True)
    assert "All times in <strong>America/New York</strong> time." in html
    assert "Wednesday 15 January 2031" in html
    assert "09:00–09:45" in html and "11:00–11:45" in html
    assert html.count('name="slot_id"') == 2  # the full slot and the one inside the cutoff: not
    assert 'data-slots-zone="America/New_York"' in html and 'data-zone-chosen="no"' in html

    tokyo = client.get(f"/i/{token}?tz=Asia/Tokyo").get_data(as_text=True)
    assert "Wednesday 15 January 2031" in tokyo and "Thursday 16 January 2031" in tokyo
    assert "23:00–23:45" in tokyo and "01:00–01:45" in tokyo
    assert 'data-zone-chosen="yes"' in tokyo

    _, no_zone = setup.invite()
    assert "15:00–15:45" in client.get(f"/i/{no_zone}").get_data(as_text=True)  # the org's zone


def test_a_zone_that_does_not_exist_is_a_clear_400(ctx, client):
    setup = slot_campaign()
    slot = setup.slot(WHEN)
    _, token = setup.invite()
    page = client.get(f"/i/{token}?tz=Mars/Olympus_Mons")
    assert page.status_code == 400
    assert "is not a time zone we know" in page.get_data(as_text=True)
    assert "15:00–15:45" in page.get_data(as_text=True)  # still usable, in the org's zone

    refused = submit(client, token, "book", {"slot_id": slot.id, "time_zone": "Mars/Base"})
    assert refused.status_code == 400
    assert "is not a time zone we know" in refused.get_data(as_text=True)
    assert counts(slot.id) == (0, 0)


def test_book_reschedule_cancel_send_one_calendar_entry_with_growing_sequence(
    ctx, client, sink, run_worker
):
    setup = slot_campaign()
    first, second = setup.slot(WHEN), setup.slot(WHEN + timedelta(days=1))
    invitation, token = setup.invite(email="ann@example.com", zone="America/New_York")

    booked = submit(client, token, "book", {"slot_id": first.id})
    assert booked.status_code == 303 and "tz=America/New_York" in booked.headers["Location"]
    page = client.get(booked.headers["Location"]).get_data(as_text=True)
    assert "Your interview is booked" in page and "09:00–09:45" in page
    assert "Add to calendar" in page and f"/i/{token}/reschedule" in page
    assert counts(first.id) == (1, 1)
    assert _fresh(invitation.id).status == "accepted"
    ics_file = client.get(f"/i/{token}/calendar.ics")
    assert ics_file.status_code == 200 and b"METHOD:REQUEST" in ics_file.data

    (to, text, ics), *_ = _sent(sink, run_worker, 1)
    assert to == "ann@example.com"
    assert "Wednesday 15 January 2031, 09:00–09:45 EST" in text
    assert f"/i/{token}/reschedule" in text and f"/i/{token}/cancel" in text
    assert "METHOD:REQUEST" in ics and "SEQUENCE:0" in ics
    uid = re.search(r"UID:(\S+)", ics).group(1)

    moved = submit(client, token, "reschedule", {"slot_id": second.id}, page="/reschedule")
    assert moved.status_code == 303
    assert counts(first.id) == (0, 0) and counts(second.id) == (1, 1)
    statuses = db.session.scalars(select(Booking.status).order_by(Booking.id)).all()
    assert statuses == ["moved", "active"]
    sink.messages.clear()
    (_, text, ics), *_ = _sent(sink, run_worker, 1)
    assert "Thursday 16 January 2031, 09:00–09:45 EST" in text
    assert f"UID:{uid}" in ics and "SEQUENCE:1" in ics and "METHOD:REQUEST" in ics

    cancelled = submit(client, token, "cancel", page="/cancel")
    assert cancelled.status_code == 303
    assert counts(second.id) == (0, 0)
    assert _fresh(invitation.id).status == "pending"  # may pick again
    sink.messages.clear()
    (_, text, ics), *_ = _sent(sink, run_worker, 1)
    assert "cancelled" in text
    assert f"UID:{uid}" in ics and "SEQUENCE:2" in ics and "METHOD:CANCEL" in ics
    kinds = db.session.scalars(select(Message.kind).order_by(Message.id)).all()
    assert kinds == ["booking_confirmation", "booking_rescheduled", "booking_cancelled"]


def test_refused_bookings_say_why_and_write_nothing(ctx, client):
    setup = slot_campaign()
    other = slot_campaign("Other org")
    full = setup.slot(WHEN, capacity=1)
    closed = setup.slot(WHEN + timedelta(hours=1))
    past = setup.slot(timedelta(hours=-2))
    soon = setup.slot(timedelta(hours=3))
    foreign = other.slot(WHEN)
    from tests import factories

    elsewhere = factories.make_interview_slot(setup.org, starts_in=timedelta(days=4))
    closed.status = "closed"
    db.session.commit()
    _, holder = setup.invite()
    assert submit(client, holder, "book", {"slot_id": full.id}).status_code == 303
    _, token = setup.invite()

    cases = [
        (full, 409, "Someone just took the last place"),
        (closed, 409, "no longer offered"),
        (past, 409, "too soon to book"),
        (soon, 409, "too soon to book"),
        (foreign, 404, "not offered for this interview"),
        (elsewhere, 404, "not offered for this interview"),
    ]
    for slot, status, says in cases:
        response = submit(client, token, "book", {"slot_id": slot.id})
        assert response.status_code == status, slot
        assert says in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 1
    assert [counts(s.id)[0] for s, _, _ in cases] == [1, 0, 0, 0, 0, 0]
    assert submit(client, token, "book", {"slot_id": "x"}).status_code == 400


def test_replayed_and_tampered_forms_are_refused(ctx, client):
    setup = slot_campaign()
    first, second = setup.slot(WHEN), setup.slot(WHEN + timedelta(hours=1))
    _, token = setup.invite()
    _, other_token = setup.invite()
    fields = form_state(client, f"/i/{token}")

    assert client.post(f"/i/{token}/book", data={**fields, "slot_id": first.id}).status_code == 303
    replay = client.post(f"/i/{token}/book", data={**fields, "slot_id": second.id})
    assert replay.status_code == 409 and "out of date" in replay.get_data(as_text=True)

    tampered = client.post(
        f"/i/{other_token}/book", data={**fields, "state": fields["state"][:-3] + "abc"}
    )
    assert tampered.status_code == 400 and "was changed" in tampered.get_data(as_text=True)
    borrowed = client.post(f"/i/{other_token}/book", data={**fields, "slot_id": second.id})
    assert borrowed.status_code == 400 and "another invitation" in borrowed.get_data(as_text=True)
    no_csrf = client.post(f"/i/{other_token}/book", data={"slot_id": second.id})
    assert no_csrf.status_code == 400
    assert counts(first.id) == (1, 1) and counts(second.id) == (0, 0)


def test_reschedule_and_cancel_close_at_the_orgs_cutoff(ctx, client, sink, run_worker):
    setup = slot_campaign()
    setup.org.reschedule_cutoff_hours = 12
    db.session.commit()
    soon, later = setup.slot(timedelta(hours=30)), setup.slot(timedelta(hours=60))
    _, token = setup.invite()
    assert submit(client, token, "book", {"slot_id": soon.id}).status_code == 303
    page = form_state(client, f"/i/{token}/cancel")  # the page as the candidate left it open

    frozen = clock.FrozenClock(clock.now() + timedelta(hours=20))  # 10 h before: inside 12 h
    clock.set_clock(frozen)
    html = client.get(f"/i/{token}").get_data(as_text=True)
    assert "can no longer be changed here" in html and f"/i/{token}/cancel" not in html
    moved = client.post(f"/i/{token}/reschedule", data={**page, "slot_id": later.id})
    assert moved.status_code == 409 and "less than 12 hours" in moved.get_data(as_text=True)
    cancel = client.post(f"/i/{token}/cancel", data=page)
    assert cancel.status_code == 409
    assert counts(soon.id) == (1, 1) and counts(later.id) == (0, 0)
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1  # the confirmation


def test_none_of_these_times_work_reaches_the_recruiter(ctx, client, login_as, sink, run_worker):
    setup = slot_campaign()
    setup.slot(WHEN)
    invitation, token = setup.invite(email="bo@example.com")

    empty = submit(client, token, "none-fit", {"note": "   "})
    assert empty.status_code == 400 and "which times would work" in empty.get_data(as_text=True)
    sent = submit(client, token, "none-fit", {"note": "Only Fridays after 16:00, sorry."})
    assert sent.status_code == 303
    assert _fresh(invitation.id).no_slot_fits_note == ("Only Fridays after 16:00, sorry.")
    (to, text, _), *_ = _sent(sink, run_worker, 1)
    assert to == setup.recruiter_email and "Only Fridays after 16:00, sorry." in text

    from app.models import User

    recruiter = db.session.scalar(select(User).where(User.email == setup.recruiter_email))
    login_as(recruiter, setup.org)
    campaign_page = client.get(f"/campaigns/{setup.campaign.id}").get_data(as_text=True)
    assert "None of the times work" in campaign_page
    assert "Only Fridays after 16:00, sorry." in campaign_page


def test_accepting_a_slots_invitation_without_a_time_asks_for_one(ctx, client):
    setup = slot_campaign()
    setup.slot(WHEN)
    invitation, token = setup.invite()
    fields = form_state(client, f"/i/{token}")
    response = client.post(
        f"/i/{token}", data={"csrf_token": fields["csrf_token"], "answer": "accept"}
    )
    assert response.status_code == 400
    assert "Pick one of the times" in response.get_data(as_text=True)
    assert _fresh(invitation.id).status == "pending"
