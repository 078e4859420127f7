"""In real Chromium at 1440 and 390 px: the recruiter creates a campaign whose candidates pick a
slot, generates slots from weekly hours with a teammate as interviewer, sees who booked on the
schedule, moves a candidate to another slot and cancels a slot; the page never scrolls sideways."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.models import Booking, Campaign, InterviewSlot, Invitation, Role, TemplateKind
from tests.browser.test_layout import OVERFLOW


def _book(factories, org, campaign: Campaign, slot: InterviewSlot, email: str, name: str) -> None:
    """A candidate books through the booking service (committed: the server sees it)."""
    from app.invitations import booking as bookings
    from app.invitations.tokens import new_token

    candidate = factories.make_candidate(org, email=email, first_name=name)
    _, token_hash, encrypted = new_token()
    invitation = Invitation(
        org_id=org.id,
        campaign_id=campaign.id,
        candidate_id=candidate.id,
        job_id=campaign.job_id,
        token_hash=token_hash,
        token_encrypted=encrypted,
        expires_at=clock.now() + timedelta(days=30),
    )
    db.session.add(invitation)
    db.session.flush()
    bookings.book(org, invitation, slot.id, "Europe/London")
    db.session.commit()


def _fits(page: Page) -> None:
    layout = page.evaluate(OVERFLOW)
    assert layout["scroll"] <= layout["inner"], layout


def _generate(page: Page, end: str = "12:00") -> None:
    page.locator("#gen-windows-0-days-1").check()  # Tue
    page.locator("#gen-windows-0-days-2").check()  # Wed
    page.locator("#gen-windows-0-start").fill("10:00")
    page.locator("#gen-windows-0-end").fill(end)
    page.get_by_label("First day").fill("2030-07-01")
    page.get_by_label("Last day").fill("2030-07-07")
    page.get_by_label("Minutes per slot").fill("45")
    page.get_by_label("Minutes between slots").fill("15")
    page.locator("#gen-location").fill("https://meet.example/globex-platform-interview")
    page.locator("#gen-teammates").get_by_label("Ada Interviewer").check()
    page.get_by_role("button", name="Generate slots").click()


def test_recruiter_generates_slots_moves_a_candidate_and_cancels_a_slot(
    page: Page, app, live_server, factories, shots
):
    org = factories.make_org("Globex Talent")
    org.timezone, org.postal_address = "Europe/Paris", "1 Rue de Rivoli, Paris"
    db.session.commit()
    factories.make_job(org, "Platform Engineer")
    factories.make_email_template(org, TemplateKind.INVITATION, name="Interview invitation")
    factories.make_user(org, Role.VIEWER, email="ada@example.com", name="Ada Interviewer")
    factories.make_user(
        org, Role.RECRUITER, email="rita@example.com", name="Rita", password="a-long-password"
    )

    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("rita@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    page.goto(live_server + "/campaigns/new")
    page.get_by_label("Campaign name").fill("Platform slots")
    page.get_by_label("Candidates pick a slot").check()
    page.get_by_role("button", name="Review").click()
    expect(page.get_by_role("heading", name="Schedule", level=1)).to_be_visible()
    expect(page.get_by_text("No slots yet")).to_be_visible()

    _generate(page, end="09:00")  # before the start: refused beside the form, nothing added
    expect(page.get_by_role("alert")).to_contain_text("the end is not after the start")
    expect(page.get_by_text("No slots yet")).to_be_visible()
    _generate(page)
    expect(page.get_by_text("4 slots added.")).to_be_visible()
    expect(page.get_by_role("heading", name="Tuesday 2 July 2030")).to_be_visible()
    expect(page.get_by_text("with Ada Interviewer").first).to_be_visible()

    campaign = db.session.scalars(select(Campaign).where(Campaign.name == "Platform slots")).one()
    slots = db.session.scalars(
        select(InterviewSlot)
        .where(InterviewSlot.campaign_id == campaign.id)
        .order_by(InterviewSlot.starts_at)
    ).all()
    _book(factories, org, campaign, slots[0], "grace@example.com", "Grace")
    _book(factories, org, campaign, slots[1], "linus@example.com", "Linus")
    page.reload()
    expect(page.get_by_text("2 booked")).to_be_visible()
    _fits(page)
    shots(page, "60-schedule-desktop")

    # move Grace from Tue 10:00 to Wed 10:00 (HTMX: the schedule fragment is swapped in)
    page.get_by_label("Move Grace Idate to").select_option(str(slots[2].id))
    page.get_by_role("button", name="Move").first.click()
    moved = page.get_by_text("Grace Idate moved; they get the updated calendar entry.")
    expect(moved).to_be_visible()
    db.session.expire_all()
    assert db.session.scalars(
        select(Booking.slot_id).where(Booking.status == "active").order_by(Booking.slot_id)
    ).all() == [slots[1].id, slots[2].id]

    # cancel Linus's slot: confirmed in a dialog, Linus is told and asked to pick again
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel slot 11:00").first.click()
    expect(page.get_by_text("1 candidate told and asked to pick another time")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(InterviewSlot, slots[1].id).status == "cancelled"

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_role("heading", name="Wednesday 3 July 2030")).to_be_visible()
    _fits(page)
    shots(page, "61-schedule-phone")
