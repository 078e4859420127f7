"""In real Chromium: a recruiter adds a candidate by hand, edits them (a custom field row
included), and deletes them after confirming."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from app.models import Role


def test_add_edit_and_delete_a_candidate(page: Page, live_server, factories, shots):
    org = factories.make_org("Globex Talent")
    factories.make_user(
        org, Role.RECRUITER, email="rita@example.com", name="Rita", password="a-long-password"
    )
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("rita@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Candidates").first.click()
    page.get_by_role("link", name="New candidate").click()
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Phone").fill("+44 20 7946 0000")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_label("Field name 1").fill("Portfolio")
    page.get_by_label("Value 1").fill("https://ada.example")
    page.get_by_role("button", name="Add candidate").click()
    expect(page.get_by_text("Ada Lovelace added.")).to_be_visible()
    details = page.locator("#candidate-details")
    expect(details).to_contain_text("+44 20 7946 0000")
    expect(details).to_contain_text("Europe/London")
    expect(details).to_contain_text("https://ada.example")
    shots(page, "30-candidate-added")

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Email").fill("ada.king@example.com")
    page.get_by_label("Last name").fill("King")
    page.get_by_label("Field name 2").fill("Team")
    page.get_by_label("Value 2").fill("Analytical engines")
    page.get_by_role("button", name="Save candidate").click()
    expect(page.get_by_text("Candidate saved.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada King")
    expect(details).to_contain_text("ada.king@example.com")
    expect(details).to_contain_text("Analytical engines")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete candidate").click()
    expect(page.get_by_text(re.compile(r"Ada King deleted\."))).to_be_visible()
    expect(page.get_by_text("No candidates yet")).to_be_visible()
