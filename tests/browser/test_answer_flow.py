"""In real Chromium at phone size: a candidate accepts a fixed interview time, changes their
mind, and confirms the decline with a reason and a note; the calendar entry that came with the
confirmation is cancelled. Screenshot of the decline confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.models import Invitation, Message
from tests.booking_setup import slot_campaign

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": PHONE, "has_touch": True}


def test_accept_then_decline_with_a_reason(page: Page, app, live_server, factories, shots):
    setup = slot_campaign("Globex Hiring")
    campaign = setup.campaign
    campaign.scheduling = "fixed"
    campaign.slot_starts_at = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)
    campaign.slot_ends_at = campaign.slot_starts_at + timedelta(minutes=45)
    db.session.commit()
    invitation, token = setup.invite(email="nia@example.com", zone="America/New_York")

    page.goto(f"{live_server}/i/{token}")
    page.get_by_role("button", name="Accept the interview").click()
    expect(page.get_by_text("Your answer is recorded")).to_be_visible()
    page.get_by_role("button", name="Decline instead").click()
    expect(page.get_by_role("heading", name="Decline this interview?")).to_be_visible()
    page.get_by_role("radio", name="Accepted another offer").check()
    page.get_by_label("Anything else? (optional)").fill("Thank you for your time.")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone"
    confirm = page.get_by_role("button", name="Yes, decline")
    expect(confirm).not_to_have_css("color", "rgb(255, 255, 255)")  # readable on white
    shots(page, "decline-confirmation")
    page.get_by_role("button", name="Yes, decline").click()
    expect(page.get_by_text("Your reason: Accepted another offer")).to_be_visible()
    expect(page.get_by_role("button", name="Accept instead")).to_be_visible()

    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).decline_note == "Thank you for your time."
    kinds = db.session.scalars(
        select(Message.kind).where(Message.invitation_id == invitation.id).order_by(Message.id)
    ).all()
    assert kinds == ["booking_confirmation", "booking_cancelled"]  # REQUEST, then CANCEL
