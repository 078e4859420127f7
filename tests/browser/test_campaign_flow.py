"""In real Chromium: import a CSV with bad rows, create a campaign, review it, schedule it a
minute ahead (the clock moves through the app's clock hook), watch it complete, accept the
invitation from the dev mailbox, and see the answer in the campaign view."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from app import clock
from app.extensions import db
from app.models import Role, TemplateKind

CSV = (
    "Email,First name,Last name,Tags\n"
    "ada@example.com,Ada,Lovelace,shortlist\n"
    "broken-address,Bad,Row,shortlist\n"
    "grace@example.com,Grace,Hopper,shortlist\n"
    ",No,Email,shortlist\n"
)


def test_import_campaign_schedule_and_accept(
    page: Page,
    browser: Browser,
    app,
    live_server,
    devmail_sink,
    run_worker,
    factories,
    shots,
    tmp_path,
):
    org = factories.make_org("Globex Talent")
    org.timezone, org.postal_address = "Europe/Paris", "1 Rue de Rivoli, Paris"
    db.session.commit()
    factories.make_job(org, "Platform Engineer")
    factories.make_email_template(org, TemplateKind.INVITATION, name="Interview invitation")
    factories.make_user(
        org,
        Role.RECRUITER,
        email="rita@example.com",
        name="Rita Recruiter",
        password="a-long-password",
    )
    frozen = clock.FrozenClock()
    clock.set_clock(frozen)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("rita@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    # import with bad rows reported by line
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(CSV)
    page.get_by_role("link", name="Candidates").click()
    page.get_by_role("link", name="Import CSV").first.click()
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_role("heading", name="Map the columns of people.csv")).to_be_visible()
    page.get_by_role("button", name="Import").click()
    run_worker()
    expect(page.get_by_text("Done: 4 rows read.")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Imported people.csv")
    expect(page.get_by_role("cell", name="3", exact=True)).to_be_visible()
    expect(page.get_by_text("Invalid email address")).to_be_visible()
    shots(page, "20-import-report")

    # campaign: create, review, schedule a minute ahead in the org's time zone
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Campaign name").fill("Platform spring round")
    page.get_by_label("Candidates with tag").select_option("shortlist")
    expect(page.locator("#audience-count")).to_contain_text("2 candidates will be invited")
    page.get_by_role("button", name="Review").click()
    frame = page.frame_locator("iframe.preview-frame")
    expect(frame.get_by_role("heading", name="Hi Ada,")).to_be_visible()
    shots(page, "21-campaign-review")
    at = (frozen() + timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Paris"))
    page.get_by_label("Schedule at").check()
    page.locator("#at").fill(at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Send invitations").click()
    expect(page.get_by_text("2 invitations scheduled for")).to_be_visible()
    run_worker()

    frozen.advance(120)  # the scheduled minute passes
    from app.jobs.campaigns import start_due_campaigns

    assert start_due_campaigns() == 1
    run_worker()
    expect(page.locator("#campaign-progress")).to_contain_text("Sent", timeout=10_000)
    expect(page.locator("progress.progress")).to_have_attribute("value", "100", timeout=10_000)
    shots(page, "22-campaign-progress")

    # the candidate opens the invitation from the dev mailbox and accepts
    page.get_by_role("link", name="Dev mailbox").click()
    page.get_by_role("link", name=re.compile("Platform Engineer")).first.click()
    page.get_by_text("Text", exact=True).click()
    link = re.search(
        r"https?://\S+/i/[A-Za-z0-9_-]{43}", page.locator("pre.mail-text").inner_text()
    ).group(0)
    candidate = browser.new_context().new_page()
    candidate.goto(link)
    expect(candidate.get_by_role("heading", name="Platform Engineer")).to_be_visible()
    candidate.get_by_role("button", name="Accept the interview").click()
    expect(candidate.get_by_text("Your answer is recorded")).to_be_visible()
    shots(candidate, "23-candidate-accepted")

    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Platform spring round").click()
    expect(page.locator("#campaign-progress dd.ok-text")).to_have_text("1")
    recipients = page.locator("details.recipients")  # a short list shows open, with the answer
    expect(recipients.locator("tbody")).to_contain_text(re.compile("accepted", re.I))
    expect(page.get_by_role("button", name="Cancel campaign")).to_be_visible()
    shots(page, "24-campaign-answered")
