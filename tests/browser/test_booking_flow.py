"""In real Chromium at phone size (390x844), in New York while the org is in Berlin: the slot
picker shows local times and names the zone; the candidate books, reschedules (by keyboard) and
cancels; a second candidate who picked the same time a moment too late is told it is taken.
Screenshots of the slot picker and the confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.booking_setup import counts, slot_campaign

WHEN = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)  # 09:00 in New York, 15:00 in Berlin
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {
        **browser_context_args,
        "viewport": PHONE,
        "timezone_id": "America/New_York",
        "has_touch": True,
    }


def _fits_the_phone(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone"


def test_candidate_books_reschedules_and_cancels_on_a_phone(
    page: Page, browser: Browser, app, live_server, factories, shots
):
    setup = slot_campaign("Globex Hiring")
    first = setup.slot(WHEN)
    second = setup.slot(WHEN + timedelta(hours=1), location="https://meet.example.com/globex")
    _, token = setup.invite(email="nia@example.com")  # no zone stored: the page starts in Berlin's
    _, other = setup.invite(email="olu@example.com")

    page.goto(f"{live_server}/i/{token}")
    expect(page.locator("#zone-name")).to_have_text("All times in America/New York time.")
    expect(page.get_by_text("Wednesday 15 January 2031")).to_be_visible()
    expect(page.locator(".details")).to_contain_text("EST")  # the reply-by time too
    expect(page.get_by_role("radio", name="09:00–09:45")).to_be_visible()
    _fits_the_phone(page)
    shots(page, "booking-slot-picker")

    page.get_by_role("radio", name="09:00–09:45").check()
    page.get_by_role("button", name="Book this time").click()
    expect(page.get_by_text("Your interview is booked.")).to_be_visible()
    expect(page.locator(".booked-time")).to_contain_text("09:00–09:45")
    expect(page.locator(".booked-time")).to_contain_text("America/New York time (EST)")
    expect(page.get_by_role("link", name="Add to calendar")).to_be_visible()
    _fits_the_phone(page)
    shots(page, "booking-confirmation")
    assert counts(first.id) == (1, 1)

    # a second candidate, in London, opens the page and picks 10:00 New York time (15:00 there)
    rival = browser.new_context(viewport=PHONE, timezone_id="Europe/London").new_page()
    rival.goto(f"{live_server}/i/{other}")
    expect(rival.locator("#zone-name")).to_have_text("All times in Europe/London time.")
    expect(rival.get_by_role("radio", name="14:00–14:45")).to_have_count(0)  # taken: not offered
    rival.get_by_role("radio", name="15:00–15:45").check()

    # ...while the first moves to that very time, by keyboard
    page.get_by_role("link", name="Reschedule").click()
    expect(page.get_by_role("heading", name="Pick a new time")).to_be_visible()
    page.get_by_role("radio", name="10:00–10:45").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your interview is moved.")).to_be_visible()
    expect(page.locator(".booked-time")).to_contain_text("10:00–10:45")
    expect(page.get_by_role("link", name="https://meet.example.com/globex")).to_be_visible()
    assert counts(first.id) == (0, 0) and counts(second.id) == (1, 1)

    rival.get_by_role("button", name="Book this time").click()
    expect(rival.get_by_text("Someone just took the last place at that time.")).to_be_visible()
    expect(rival.get_by_role("radio", name="15:00–15:45")).to_have_count(0)
    expect(rival.get_by_role("radio", name="14:00–14:45")).to_be_visible()  # released: open again
    assert counts(second.id) == (1, 1)

    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("button", name="Yes, cancel the interview").click()
    expect(page.get_by_text("Your interview is cancelled.")).to_be_visible()
    expect(page.get_by_role("heading", name="Pick a time")).to_be_visible()
    assert counts(second.id) == (0, 0)
    rival.context.close()
