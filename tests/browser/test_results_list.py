"""In real Chromium: a recruiter opens a campaign's results from the campaign page, searches and
filters (HTMX swaps the rows and the address keeps the filters), marks who attended after the
interview, exports the CSV, and reads the same list on a 390 px phone without sideways scrolling.
Screenshots at 1440 and 390 px."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import Invitation, Message, Role, Suppression, TemplateKind

PEOPLE = [
    ("Ada", "Lovelace", "accepted"),
    ("Grace", "Hopper", "accepted"),
    ("Alan", "Turing", "declined"),
    ("Katherine", "Johnson", "no_slot_fits"),
    ("Edsger", "Dijkstra", "bounced"),
    ("Barbara", "Liskov", "unsubscribed"),
    ("Donald", "Knuth", "pending"),
    ("Margaret", "Hamilton", "pending"),
]


def _campaign(factories):
    """A fixed-time campaign whose interview ended an hour ago, its people in every state."""
    org = factories.make_org("Globex Talent")
    org.timezone = "Europe/Paris"
    db.session.commit()
    user = factories.make_user(
        org, Role.RECRUITER, email="rita@example.com", name="Rita", password="a-long-password"
    )
    factories.make_email_template(org, TemplateKind.FOLLOW_UP, name="Thank you for coming")
    campaign = factories.launch_campaign(org, len(PEOPLE), user=user, tag="spring")
    campaign.name = "Platform spring round"
    campaign.scheduling = "fixed"
    campaign.slot_starts_at = clock.now() - timedelta(hours=2)
    campaign.slot_ends_at = clock.now() - timedelta(hours=1)
    invitations = sorted(
        db.session.scalars(select(Invitation).where(Invitation.campaign_id == campaign.id)),
        key=lambda i: i.candidate.email,
    )
    for invitation, (first, last, state) in zip(invitations, PEOPLE, strict=True):
        person = invitation.candidate
        person.first_name, person.last_name = first, last
        person.email = f"{first.lower()}@example.com"
        message = db.session.scalars(
            select(Message).where(Message.invitation_id == invitation.id)
        ).one()
        message.to_email, message.status, message.delivery = person.email, "sent", "delivered"
        if state in ("accepted", "declined"):
            invitation.status, invitation.responded_at = state, clock.now() - timedelta(days=1)
        if state == "declined":
            invitation.decline_reason, invitation.decline_note = "timing", "Travelling that week"
        if state == "no_slot_fits":
            invitation.no_slot_fits_note = "Could we do an evening?"
        if state == "bounced":
            message.bounced_at, message.delivery = clock.now(), None
        if state == "unsubscribed":
            db.session.add(Suppression(org_id=org.id, email=person.email, reason="unsubscribed"))
        if first == "Ada":
            message.human_viewed_at = message.viewed_at = clock.now() - timedelta(days=1)
    db.session.commit()
    return campaign


def _login(page: Page, live_server: str) -> None:
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("rita@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()


def test_results_list_filter_mark_export_on_laptop_and_phone(
    page: Page, app, live_server, factories, shots
):
    campaign = _campaign(factories)
    page.set_viewport_size({"width": 1440, "height": 900})
    _login(page, live_server)
    page.goto(f"{live_server}/campaigns/{campaign.id}")
    expect(page.locator("#figure-booked")).to_have_text("2")
    expect(page.locator("#figure-no-reply")).to_have_text("2")
    expect(page.locator("#figure-viewed")).to_have_text("1")
    page.get_by_role("link", name="All 8 recipients").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Results")
    rows = page.locator("#results-rows tbody tr")
    expect(rows).to_have_count(8)
    expect(page.get_by_text("Travelling that week")).to_be_visible()
    shots(page, "results-list-1440")

    page.get_by_label("Search").fill("grace")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(f"{live_server}/campaigns/{campaign.id}/results?q=grace&state=")
    page.get_by_label("Search").fill("")
    page.get_by_label("State").select_option("booked")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(f"{live_server}/campaigns/{campaign.id}/results?q=&state=booked")

    ada = page.locator("#results-rows tr", has_text="ada@example.com")
    ada.get_by_role("button", name="Attended").click()
    expect(ada.locator(".badge-attended")).to_have_text("Attended")
    expect(ada.get_by_role("button", name="Attended")).to_have_attribute("aria-pressed", "true")
    db.session.expire_all()
    assert db.session.scalars(
        select(Invitation.attended).where(Invitation.attended.is_not(None))
    ).all() == ["attended"]

    with page.expect_download() as download:
        page.get_by_role("link", name="Export these as CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()
    exported = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["email"] for r in exported) == ["ada@example.com", "grace@example.com"]
    assert {r["email"]: r["attendance"] for r in exported}["ada@example.com"] == "Attended"

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/campaigns/{campaign.id}/results")
    expect(rows).to_have_count(8)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width} px wide)"
    expect(page.get_by_label("State")).to_be_visible()
    shots(page, "results-list-390")

    page.get_by_label("State").select_option("declined")
    expect(rows).to_have_count(1)
    expect(page.get_by_text("Timing doesn't work")).to_be_visible()
