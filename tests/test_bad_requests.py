"""Requests a careful attacker would try: a login `next` off the site, NUL bytes, ids too large
for the database. Each gets a 4xx or stays on the site, never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, Role, User
from tests.booking_setup import slot_campaign, submit
from tests.factories import PASSWORD


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example",
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/%0A/evil.example",
    ],
)
def test_login_next_never_leaves_the_site(client, factories, post, target):
    factories.make_user(factories.make_org(), email="li@example.com")
    response = post(f"/login?next={target}", {"email": "li@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.location == "/"


def test_nul_bytes_and_huge_ids_are_4xx(client, factories, login_as, post):
    org = factories.make_org()
    login_as(factories.make_user(org), org)
    response = post("/settings", {"name": "Acme\x00", "timezone": "UTC"})
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    repeated = client.get("/candidates?tag=ok&tag=b%00d")  # a second value is checked too
    assert repeated.status_code == 400 and "NUL" in repeated.get_data(as_text=True)
    assert client.get("/messages/99999999999999999999999").status_code == 404
    assert post("/team/members/99999999999/role", {"role": "viewer"}).status_code == 404


SUPERSCRIPT = "²"  # str.isdigit() says yes, int() says no
LONG = "9" * 5000  # more digits than int() reads


@pytest.mark.parametrize("bad", [SUPERSCRIPT, LONG, "99999999999999999999999"])
def test_ids_that_are_digits_only_to_isdigit_are_4xx_or_ignored(
    client, factories, login_as, post, bad
):
    org = factories.make_org()
    login_as(factories.make_user(org, Role.OWNER), org)
    template = factories.make_email_template(org)
    assert client.get(f"/campaigns/count?ids={bad},1&job_id={bad}").status_code == 200
    assert client.get(f"/campaigns/new?candidate={bad}").status_code == 200
    assert post("/campaigns/new", {"name": "x", "ids": f"{bad},1"}).status_code < 500
    preview = post(f"/templates/{template.id}/preview", {"sample-candidate_id": bad})
    assert preview.status_code < 500
    hours = post("/settings", {"r-business_hours": "y", "r-opens": f"{SUPERSCRIPT}:00"})
    assert hours.status_code < 500


def test_moving_a_booking_to_a_slot_id_int_cannot_read_is_400(client, ctx, login_as, post):
    setup = slot_campaign()
    slot = setup.slot()
    _, token = setup.invite()
    assert submit(client, token, "book", {"slot_id": str(slot.id)}).status_code == 303
    booking = db.session.scalar(select(Booking))
    recruiter = db.session.scalar(select(User).where(User.email == setup.recruiter_email))
    login_as(recruiter, setup.org)
    url = f"/campaigns/{setup.campaign.id}/bookings/{booking.id}/move"
    response = post(url, {"slot_id": SUPERSCRIPT})
    assert response.status_code == 400
    assert "Pick the slot" in response.get_data(as_text=True)
    assert post(url, {"slot_id": LONG}).status_code == 404  # no slot has that many digits


@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_a_time_at_the_calendars_edge_is_refused_not_an_error(
    client, factories, login_as, post, when
):
    org = factories.make_org()  # Europe/Paris: year 1 at midnight is before UTC's year 1
    org.timezone = "Europe/Paris" if when.startswith("0001") else "America/New_York"
    db.session.commit()
    login_as(factories.make_user(org, Role.RECRUITER), org)
    campaign = factories.make_campaign(org)
    for url, data in (
        (f"/campaigns/{campaign.id}/move", {"starts_at": when}),
        (f"/campaigns/{campaign.id}/launch", {"mode": "later", "at": when}),
    ):
        response = post(url, data, follow_redirects=True)
        assert response.status_code < 500, url
        assert "Pick" in response.get_data(as_text=True), url
