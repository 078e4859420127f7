"""Booking races against real PostgreSQL: clients in threads post at the same moment, and the
database alone decides (the guarded UPDATE, the CHECK on the counter, the partial unique index)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Booking
from tests.booking_setup import counts, form_state, slot_campaign

WHEN = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


def _together(app, posts: list[tuple[str, dict]]) -> list[int]:
    """POST each (url, form) from its own client (which first opened the page, for its CSRF
    session) in its own thread, all released at once; the statuses."""
    ready = []
    for url, form in posts:
        client = app.test_client()
        page = url.rsplit("/", 1)[0]
        fresh = form_state(client, page)
        ready.append((client, url, {**form, "csrf_token": fresh["csrf_token"]}))
    start = threading.Barrier(len(ready))
    statuses: list[int] = [0] * len(ready)

    def run(n: int) -> None:
        client, url, form = ready[n]
        start.wait(timeout=10)
        statuses[n] = client.post(url, data=form).status_code

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(ready))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


@pytest.fixture
def unlimited(app, monkeypatch):
    """The races post many times from one address: the public pages' budget raised for them."""
    monkeypatch.setitem(app.config, "INVITE_RATE_PER_MINUTE", 100_000)


def test_two_candidates_racing_for_the_last_place_one_gets_it(ctx, app, unlimited):
    setup = slot_campaign()
    for round_ in range(8):
        slot = setup.slot(WHEN + timedelta(hours=round_))
        posts = []
        for _ in range(2):
            _, token = setup.invite()
            fields = form_state(app.test_client(), f"/i/{token}")
            posts.append((f"/i/{token}/book", {**fields, "slot_id": slot.id}))
        statuses = _together(app, posts)
        assert sorted(statuses) == [303, 409], round_
        assert counts(slot.id) == (1, 1)


def test_one_candidate_from_two_clients_gets_one_booking(ctx, app, unlimited):
    setup = slot_campaign()
    for round_ in range(6):
        a = setup.slot(WHEN + timedelta(days=1, hours=round_))
        b = setup.slot(WHEN + timedelta(days=2, hours=round_))
        invitation, token = setup.invite()
        fields = form_state(app.test_client(), f"/i/{token}")  # both tabs show the same page
        statuses = _together(
            app,
            [
                (f"/i/{token}/book", {**fields, "slot_id": a.id}),
                (f"/i/{token}/book", {**fields, "slot_id": b.id}),
            ],
        )
        assert sorted(statuses) == [303, 409], round_
        booked_a, booked_b = counts(a.id), counts(b.id)
        assert sorted([booked_a, booked_b]) == [(0, 0), (1, 1)]
        active = db.session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.invitation_id == invitation.id, Booking.status == "active")
        )
        assert active == 1


def test_a_crowd_never_overfills_a_group_slot(ctx, app, unlimited):
    """Six candidates, three places: three bookings, the counter at capacity, never past it."""
    setup = slot_campaign()
    slot = setup.slot(WHEN, capacity=3)
    posts = []
    for _ in range(6):
        _, token = setup.invite()
        fields = form_state(app.test_client(), f"/i/{token}")
        posts.append((f"/i/{token}/book", {**fields, "slot_id": slot.id}))
    statuses = _together(app, posts)
    assert sorted(statuses) == [303] * 3 + [409] * 3
    assert counts(slot.id) == (3, 3)


def test_the_database_itself_refuses_overbooking_and_a_second_active_booking(ctx, factories):
    org = factories.make_org()
    booking = factories.make_booking(org)
    with pytest.raises(IntegrityError):  # the CHECK: booked never passes capacity
        db.session.execute(
            text("UPDATE interview_slots SET booked = capacity + 1 WHERE id = :id"),
            {"id": booking.slot_id},
        )
    db.session.rollback()
    twin = Booking(
        org_id=org.id,
        campaign_id=booking.campaign_id,
        slot_id=booking.slot_id,
        invitation_id=booking.invitation_id,
        candidate_id=booking.candidate_id,
        time_zone="UTC",
        uid="another@herald.test",
    )
    db.session.add(twin)
    with pytest.raises(IntegrityError):  # the partial unique index: one active per candidate
        db.session.flush()
    db.session.rollback()
